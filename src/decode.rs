//! Turns the bytes of one CloudTrail object into its records, one at a time.
//!
//! An object is gzip (possibly several members) around `{"Records":[{...},{...}]}`. The reader
//! here inflates as it goes and hands out each element of `Records` as the raw JSON text it was
//! written as, so memory stays at one record plus a read buffer however large the object is.
//! It checks the structure around the records, not the records themselves: whether a record is
//! valid JSON and how it becomes a line is `flatten`'s job.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read};

use flate2::bufread::MultiGzDecoder;

const READ_CHUNK: usize = 64 * 1024;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Why an object's records could not all be read. `records` counts those handed out before
/// the problem, so a caller can say how far it got.
#[derive(Debug)]
pub enum DecodeError {
    /// The stream broke: gzip data corrupt or cut short, or the download failed midway.
    Read { records: u64, source: io::Error },
    /// The object decompressed to nothing.
    Empty,
    /// The text is not the JSON document CloudTrail writes.
    Syntax {
        records: u64,
        offset: u64,
        expected: &'static str,
    },
    /// A JSON object, but without a `Records` array.
    NoRecords,
    /// The data ended inside the `Records` array.
    Truncated { records: u64 },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Read { records, source } => {
                write!(f, "reading or decompressing failed after {records} records: {source}")
            }
            DecodeError::Empty => write!(f, "the object is empty once decompressed"),
            DecodeError::Syntax {
                records,
                offset,
                expected,
            } => write!(
                f,
                "not a CloudTrail log: expected {expected} at byte {offset} (after {records} records)"
            ),
            DecodeError::NoRecords => {
                write!(f, "not a CloudTrail log: the JSON object has no \"Records\" array")
            }
            DecodeError::Truncated { records } => {
                write!(f, "the data ends inside the \"Records\" array, after {records} records")
            }
        }
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DecodeError::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// One element of `Records`, as written in the object.
#[derive(Debug, Clone, Copy)]
pub struct RawRecord<'a> {
    pub text: &'a [u8],
    /// No whitespace between tokens: the text can become a line as it is.
    pub compact: bool,
}

/// Wraps an object's body: inflates it when it starts with the gzip magic, reads it as it is
/// otherwise (a proxy or tool may already have removed the `Content-Encoding: gzip` layer).
pub fn open(body: impl Read + Send + 'static) -> io::Result<Box<dyn Read + Send>> {
    let mut buffered = BufReader::with_capacity(READ_CHUNK, body);
    let head = buffered.fill_buf()?;
    if head.starts_with(&GZIP_MAGIC) {
        Ok(Box::new(MultiGzDecoder::new(buffered)))
    } else {
        Ok(Box::new(buffered))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Before the opening `{` of the document.
    Start,
    /// Inside the top object, where a key (or its end) comes next.
    TopObject { first: bool },
    /// Inside `Records`, where a record (or the end of the array) comes next.
    InRecords { first: bool },
    /// After the closing `}` of the document.
    End,
}

/// Hands out the records of one object, in order.
pub struct RecordReader<R> {
    input: R,
    buf: Vec<u8>,
    /// Next unread byte in `buf`.
    pos: usize,
    /// Bytes dropped from the front of `buf` so far: turns `pos` into an offset in the object.
    dropped: u64,
    eof: bool,
    place: Place,
    seen_records_key: bool,
    records: u64,
}

impl<R: Read> RecordReader<R> {
    pub fn new(input: R) -> Self {
        RecordReader {
            input,
            buf: Vec::with_capacity(READ_CHUNK),
            pos: 0,
            dropped: 0,
            eof: false,
            place: Place::Start,
            seen_records_key: false,
            records: 0,
        }
    }

    /// Records handed out so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// The next record, `None` at the end of a well-formed object.
    pub fn next_record(&mut self) -> Result<Option<RawRecord<'_>>, DecodeError> {
        loop {
            match self.place {
                Place::Start => {
                    self.compact_buffer();
                    self.skip_bom()?;
                    match self.next_token()? {
                        None => return Err(DecodeError::Empty),
                        Some(b'{') => self.place = Place::TopObject { first: true },
                        Some(_) => return Err(self.syntax("`{` at the start of the document")),
                    }
                }
                Place::TopObject { first } => match self.next_token()? {
                    Some(b'}') => self.place = Place::End,
                    Some(b',') if !first => {
                        self.place = Place::TopObject { first: true };
                        if self.peek_token()? == Some(b'}') {
                            return Err(self.syntax("a key after `,`"));
                        }
                    }
                    Some(b'"') => self.top_level_member()?,
                    None => return Err(self.end_inside_document()),
                    Some(_) => return Err(self.syntax("a key or `}` in the top-level object")),
                },
                Place::InRecords { first } => {
                    self.compact_buffer();
                    match self.next_token()? {
                        Some(b']') => self.place = Place::TopObject { first: false },
                        Some(b',') if !first => self.place = Place::InRecords { first: true },
                        Some(first_byte) => {
                            // Any value is handed out: one that is not an object is `flatten`'s
                            // to reject, so that it costs that record only, not the rest.
                            let start = self.pos - 1;
                            let (end, compact) = match first_byte {
                                b'{' | b'[' => self.scan_container(start)?,
                                b'"' => (self.scan_string(start + 1)?, true),
                                _ => (self.scan_scalar(start)?, true),
                            };
                            self.pos = end;
                            self.records += 1;
                            self.place = Place::InRecords { first: false };
                            return Ok(Some(RawRecord {
                                text: &self.buf[start..end],
                                compact,
                            }));
                        }
                        None => {
                            return Err(DecodeError::Truncated {
                                records: self.records,
                            })
                        }
                    }
                }
                Place::End => {
                    return match self.next_token()? {
                        None if self.seen_records_key => Ok(None),
                        None => Err(DecodeError::NoRecords),
                        Some(_) => Err(self.syntax("nothing after the document")),
                    };
                }
            }
        }
    }

    /// Reads `"key": value` after the opening quote of a top-level key.
    fn top_level_member(&mut self) -> Result<(), DecodeError> {
        let key_start = self.pos;
        let key_end = self.scan_string(key_start)?;
        let is_records = &self.buf[key_start..key_end - 1] == b"Records";
        self.pos = key_end;
        if self.next_token()? != Some(b':') {
            return Err(self.syntax("`:` after a key"));
        }
        if is_records {
            if self.next_token()? != Some(b'[') {
                return Err(self.syntax("an array as the value of \"Records\""));
            }
            self.seen_records_key = true;
            self.place = Place::InRecords { first: true };
        } else {
            self.skip_value()?;
            self.place = Place::TopObject { first: false };
        }
        Ok(())
    }

    /// Skips a top-level value other than `Records` (CloudTrail writes none today).
    fn skip_value(&mut self) -> Result<(), DecodeError> {
        let first = match self.next_token()? {
            Some(b) => b,
            None => return Err(self.end_inside_document()),
        };
        let start = self.pos - 1;
        self.pos = match first {
            b'{' | b'[' => self.scan_container(start)?.0,
            b'"' => self.scan_string(start + 1)?,
            _ => self.scan_scalar(start)?,
        };
        Ok(())
    }

    /// Finds the end of the object or array that opens at `start`, across reads.
    /// Returns the index just past it and whether it held no whitespace between tokens.
    fn scan_container(&mut self, start: usize) -> Result<(usize, bool), DecodeError> {
        let mut depth = 0usize;
        let mut compact = true;
        let mut i = start;
        loop {
            if i == self.buf.len() && !self.fill()? {
                return Err(DecodeError::Truncated {
                    records: self.records,
                });
            }
            match self.buf[i] {
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok((i + 1, compact));
                    }
                }
                b'"' => {
                    i = self.scan_string(i + 1)?;
                    continue;
                }
                b' ' | b'\t' | b'\r' | b'\n' => compact = false,
                _ => {}
            }
            i += 1;
        }
    }

    /// Finds the end of a string whose content starts at `start` (just after its quote).
    /// Returns the index just past the closing quote.
    fn scan_string(&mut self, start: usize) -> Result<usize, DecodeError> {
        let mut i = start;
        loop {
            let unread = &self.buf[i..];
            match unread.iter().position(|&b| b == b'"' || b == b'\\') {
                Some(at) if unread[at] == b'"' => return Ok(i + at + 1),
                Some(at) => {
                    // A backslash escapes the next byte, which may still be unread.
                    i += at + 2;
                    while i > self.buf.len() {
                        if !self.fill()? {
                            return Err(self.end_inside_document());
                        }
                    }
                }
                None => {
                    i = self.buf.len();
                    if !self.fill()? {
                        return Err(self.end_inside_document());
                    }
                }
            }
        }
    }

    /// Finds the end of a number or literal starting at `start`.
    fn scan_scalar(&mut self, start: usize) -> Result<usize, DecodeError> {
        let mut i = start;
        loop {
            if i == self.buf.len() && !self.fill()? {
                return Ok(i);
            }
            match self.buf[i] {
                b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n' => return Ok(i),
                _ => i += 1,
            }
        }
    }

    /// The next byte that is not whitespace, consumed.
    fn next_token(&mut self) -> Result<Option<u8>, DecodeError> {
        let token = self.peek_token()?;
        if token.is_some() {
            self.pos += 1;
        }
        Ok(token)
    }

    /// The next byte that is not whitespace, left unread.
    fn peek_token(&mut self) -> Result<Option<u8>, DecodeError> {
        loop {
            while let Some(&b) = self.buf.get(self.pos) {
                if matches!(b, b' ' | b'\t' | b'\r' | b'\n') {
                    self.pos += 1;
                } else {
                    return Ok(Some(b));
                }
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    fn skip_bom(&mut self) -> Result<(), DecodeError> {
        while self.buf.len() < self.pos + 3 && self.fill()? {}
        if self.buf[self.pos..].starts_with(b"\xEF\xBB\xBF") {
            self.pos += 3;
        }
        Ok(())
    }

    /// Appends the next chunk of input to `buf`; false at the end of the input.
    fn fill(&mut self) -> Result<bool, DecodeError> {
        if self.eof {
            return Ok(false);
        }
        let old_len = self.buf.len();
        self.buf.resize(old_len + READ_CHUNK, 0);
        loop {
            match self.input.read(&mut self.buf[old_len..]) {
                Ok(0) => {
                    self.buf.truncate(old_len);
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.buf.truncate(old_len + n);
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    self.buf.truncate(old_len);
                    return Err(DecodeError::Read {
                        records: self.records,
                        source,
                    });
                }
            }
        }
    }

    /// Drops bytes already handed out, between records only, so indices inside a record
    /// stay valid while it is scanned.
    fn compact_buffer(&mut self) {
        if self.pos >= READ_CHUNK {
            self.buf.drain(..self.pos);
            self.dropped += self.pos as u64;
            self.pos = 0;
        }
    }

    fn syntax(&self, expected: &'static str) -> DecodeError {
        DecodeError::Syntax {
            records: self.records,
            offset: self.dropped + self.pos.saturating_sub(1) as u64,
            expected,
        }
    }

    fn end_inside_document(&self) -> DecodeError {
        if self.seen_records_key {
            DecodeError::Truncated {
                records: self.records,
            }
        } else {
            self.syntax("more data (the document ends early)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::Write;

    /// Reads every record, in a reader that returns `chunk` bytes at a time so that records
    /// straddle reads.
    fn read_all(data: &[u8], chunk: usize) -> Result<Vec<(String, bool)>, DecodeError> {
        struct Trickle<'a>(&'a [u8], usize);
        impl Read for Trickle<'_> {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                let n = self.1.min(out.len()).min(self.0.len());
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut reader = RecordReader::new(Trickle(data, chunk));
        let mut out = Vec::new();
        while let Some(r) = reader.next_record()? {
            out.push((String::from_utf8(r.text.to_vec()).unwrap(), r.compact));
        }
        Ok(out)
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn hands_out_each_record_as_written() {
        let doc = br#"{"Records":[{"a":1,"s":"x}\"{]"},{"b":[1,{"c":null}]}]}"#;
        for chunk in [1, 2, 3, 7, 1 << 20] {
            let got = read_all(doc, chunk).unwrap();
            assert_eq!(
                got,
                vec![
                    (r#"{"a":1,"s":"x}\"{]"}"#.to_owned(), true),
                    (r#"{"b":[1,{"c":null}]}"#.to_owned(), true),
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn notices_whitespace_and_tolerates_it_around_records() {
        let doc = b"\xEF\xBB\xBF {\n \"Other\": [1, {\"x\": \"]\"}], \"Records\" : [ {\"a\": 1} ,\n{\"b\":\"c d\"} ] }\n";
        let got = read_all(doc, 5).unwrap();
        assert_eq!(
            got,
            vec![
                ("{\"a\": 1}".to_owned(), false),
                ("{\"b\":\"c d\"}".to_owned(), true),
            ]
        );
    }

    #[test]
    fn any_value_in_records_is_handed_out_for_flatten_to_judge() {
        let got = read_all(
            br#"{"Records":[null,{"a":1},"s,]",12.5e3,[1,{"b":"]"}]]}"#,
            2,
        )
        .unwrap();
        let texts: Vec<&str> = got.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            texts,
            [
                "null",
                r#"{"a":1}"#,
                r#""s,]""#,
                "12.5e3",
                r#"[1,{"b":"]"}]"#
            ]
        );
    }

    #[test]
    fn empty_records_array_is_fine() {
        assert!(read_all(br#"{"Records":[]}"#, 4).unwrap().is_empty());
    }

    #[test]
    fn reports_what_is_wrong() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "empty"),
            (b"  \n", "empty"),
            (b"[1,2]", "expected `{` at the start"),
            (b"not json", "expected `{` at the start"),
            (br#"{"Other":1}"#, "no \"Records\" array"),
            (br#"{"Records":{}}"#, "an array as the value"),
            (
                br#"{"Records":[{"a":1}"#,
                "ends inside the \"Records\" array, after 1",
            ),
            (
                br#"{"Records":[{"a":1},{"b":"#,
                "ends inside the \"Records\" array, after 1",
            ),
            (
                br#"{"Records":[{"a":"x"#,
                "ends inside the \"Records\" array, after 0",
            ),
            (br#"{"Records":[]}x"#, "nothing after the document"),
        ];
        for (doc, want) in cases {
            let err = read_all(doc, 3).unwrap_err().to_string();
            assert!(
                err.contains(want),
                "{:?}: got {err:?}",
                String::from_utf8_lossy(doc)
            );
        }
    }

    #[test]
    fn inflates_gzip_including_several_members() {
        let mut data = gzip(br#"{"Records":[{"a":1},"#);
        data.extend(gzip(br#"{"b":2}]}"#));
        let mut reader = RecordReader::new(open(io::Cursor::new(data)).unwrap());
        let mut texts = Vec::new();
        while let Some(r) = reader.next_record().unwrap() {
            texts.push(String::from_utf8(r.text.to_vec()).unwrap());
        }
        assert_eq!(texts, [r#"{"a":1}"#, r#"{"b":2}"#]);
    }

    #[test]
    fn truncated_gzip_is_an_error_after_the_records_before_it() {
        let mut doc = br#"{"Records":["#.to_vec();
        for i in 0..2000 {
            doc.extend(format!(r#"{{"eventID":"{i}","n":"{}"}},"#, i * 7919).as_bytes());
        }
        doc.extend(br#"{"last":true}]}"#);
        let data = gzip(&doc);
        let cut = &data[..data.len() / 2];
        let mut reader = RecordReader::new(open(io::Cursor::new(cut.to_vec())).unwrap());
        let mut count = 0;
        let err = loop {
            match reader.next_record() {
                Ok(Some(_)) => count += 1,
                Ok(None) => panic!("a cut object must not end cleanly"),
                Err(e) => break e,
            }
        };
        assert!(count > 0 && count < 2001, "read {count} records");
        assert!(
            matches!(
                err,
                DecodeError::Read { .. } | DecodeError::Truncated { .. }
            ),
            "{err}"
        );
    }

    #[test]
    fn memory_stays_bounded_on_a_long_object() {
        let record = format!(r#"{{"eventID":"{}"}}"#, "x".repeat(1000));
        struct Endless {
            head: bool,
            record: Vec<u8>,
            left: usize,
        }
        impl Read for Endless {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                if self.head {
                    self.head = false;
                    out[..12].copy_from_slice(br#"{"Records":["#);
                    return Ok(12);
                }
                if self.left == 0 {
                    out[..2].copy_from_slice(b"]}");
                    self.left = usize::MAX;
                    return Ok(2);
                }
                if self.left == usize::MAX {
                    return Ok(0);
                }
                let n = self.record.len();
                out[..n].copy_from_slice(&self.record);
                out[n] = b',';
                self.left -= 1;
                Ok(n + if self.left == 0 { 0 } else { 1 })
            }
        }
        let mut reader = RecordReader::new(Endless {
            head: true,
            record: record.into_bytes(),
            left: 5_000,
        });
        let mut max_buf = 0;
        while reader.next_record().unwrap().is_some() {
            max_buf = max_buf.max(reader.buf.capacity());
        }
        assert_eq!(reader.records(), 5_000);
        assert!(max_buf < 4 * READ_CHUNK, "buffer grew to {max_buf} bytes");
    }
}
