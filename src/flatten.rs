//! Turns one CloudTrail record into one output line: compact JSON in the record's own key
//! order, never longer than the line limit, always valid.
//!
//! OSSEC cuts longer lines into several events (each with half a JSON document), so a record
//! that does not fit is trimmed, bulkiest parts first, and says so in an `ossecTrimmed` member.
//! The fields that rules and investigations key on are never dropped (see [`ALWAYS_KEPT`]).
//! This module does not know where records come from or where lines go.

use std::fmt;
use std::io::{self, Write};

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::decode::RawRecord;

/// Fields a trimmed line always keeps (their long strings may be shortened, never dropped).
pub const ALWAYS_KEPT: [&str; 11] = [
    "eventVersion",
    "userIdentity",
    "eventTime",
    "eventSource",
    "eventName",
    "awsRegion",
    "sourceIPAddress",
    "errorCode",
    "errorMessage",
    "eventID",
    "recipientAccountId",
];

/// Fields trimmed first, in this order of preference when they are equally large.
pub const BULKY: [&str; 5] = [
    "responseElements",
    "requestParameters",
    "additionalEventData",
    "resources",
    "serviceEventDetails",
];

/// The member added to a trimmed line: `{"fields":[...],"originalBytes":N}`.
pub const TRIM_MARK: &str = "ossecTrimmed";

/// The smallest line limit that still leaves room for every field of [`ALWAYS_KEPT`].
pub const MIN_LINE_BYTES: usize = 1024;

/// The parts of `userIdentity` kept when even it must shrink.
const IDENTITY_KEPT: [&str; 6] = [
    "type",
    "principalId",
    "arn",
    "accountId",
    "userName",
    "invokedBy",
];

/// Stands for all the fields outside [`ALWAYS_KEPT`] and [`BULKY`] in the trim mark.
const OTHER_FIELDS: &str = "otherFields";

/// How a record became its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Passed through byte for byte.
    AsWritten,
    /// Re-serialized without whitespace.
    Compacted,
    /// Parts removed or shortened to fit the limit.
    Trimmed,
}

/// A record that is not valid JSON.
#[derive(Debug)]
pub struct FlattenError(String);

impl fmt::Display for FlattenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the record is not a valid JSON object: {}", self.0)
    }
}

impl std::error::Error for FlattenError {}

/// Appends the line for `record` (without its newline) to `out`. `max_line_bytes` must be at
/// least [`MIN_LINE_BYTES`].
pub fn flatten(
    record: RawRecord<'_>,
    max_line_bytes: usize,
    out: &mut Vec<u8>,
) -> Result<Shape, FlattenError> {
    debug_assert!(max_line_bytes >= MIN_LINE_BYTES);
    if record.text.first() != Some(&b'{') {
        return Err(FlattenError("it is not a JSON object".to_owned()));
    }
    let text =
        std::str::from_utf8(record.text).map_err(|e| FlattenError(format!("bad UTF-8: {e}")))?;
    if record.compact && text.len() <= max_line_bytes {
        // Most records arrive compact and small: checking them is cheaper than rebuilding.
        serde_json::from_str::<IgnoredAny>(text).map_err(|e| FlattenError(e.to_string()))?;
        out.extend_from_slice(record.text);
        return Ok(Shape::AsWritten);
    }
    if record.compact {
        if let Some(shape) = trim_as_written(text, max_line_bytes, out) {
            return Ok(shape);
        }
    }
    let mut map: Map<String, Value> =
        serde_json::from_str(text).map_err(|e| FlattenError(e.to_string()))?;
    let start = out.len();
    serde_json::to_writer(&mut *out, &map).expect("writing JSON to memory cannot fail");
    if out.len() - start <= max_line_bytes {
        return Ok(Shape::Compacted);
    }
    out.truncate(start);
    let mark = Trim::new(text.len());
    mark.fit(&mut map, max_line_bytes, out);
    Ok(Shape::Trimmed)
}

/// The record's trimming, step by step, remembering what was touched for the trim mark.
struct Trim {
    fields: Vec<&'static str>,
    original_bytes: usize,
}

impl Trim {
    fn new(original_bytes: usize) -> Self {
        Trim {
            fields: Vec::new(),
            original_bytes,
        }
    }

    /// Trims `map` by ever stronger steps until its line fits, then writes it to `out`.
    fn fit(mut self, map: &mut Map<String, Value>, max: usize, out: &mut Vec<u8>) {
        // 1. Bulky parts, largest first, keep only their short scalar members.
        for name in by_size_desc(map, &BULKY) {
            if let Some(value) = map.get_mut(name) {
                *value = shrink(value);
                self.touch(name);
            }
            if self.write_if_fits(map, max, out) {
                return;
            }
        }
        // 2. Bulky parts, largest first, go entirely.
        for name in by_size_desc(map, &BULKY) {
            map.shift_remove(name);
            if self.write_if_fits(map, max, out) {
                return;
            }
        }
        // 3. Every other field outside the kept set goes, largest first.
        let mut others: Vec<(usize, String)> = map
            .iter()
            .filter(|(k, _)| !ALWAYS_KEPT.contains(&k.as_str()))
            .map(|(k, v)| (json_len(v), k.clone()))
            .collect();
        others.sort_by_key(|entry| std::cmp::Reverse(entry.0));
        for (_, name) in others {
            map.shift_remove(&name);
            self.touch(OTHER_FIELDS);
            if self.write_if_fits(map, max, out) {
                return;
            }
        }
        // 4. Long strings in the kept fields get shorter.
        for limit in [512, 128] {
            for value in map.values_mut() {
                shorten_strings(value, limit);
            }
            if self.write_if_fits(map, max, out) {
                return;
            }
        }
        // 5. userIdentity keeps only who acted; all strings get short. With the kept set
        // alone this fits in MIN_LINE_BYTES, whatever the record held.
        if let Some(Value::Object(identity)) = map.get_mut("userIdentity") {
            identity.retain(|k, _| IDENTITY_KEPT.contains(&k.as_str()));
        }
        for value in map.values_mut() {
            shorten_strings(value, 48);
        }
        let written = self.write_if_fits(map, max, out);
        debug_assert!(written, "a line of kept fields must fit in {max} bytes");
        if !written {
            map.retain(|k, _| k == "eventID" || k == "eventName" || k == "eventTime");
            self.write(map, out);
        }
    }

    fn touch(&mut self, field: &'static str) {
        if !self.fields.contains(&field) {
            self.fields.push(field);
        }
    }

    fn write_if_fits(&self, map: &Map<String, Value>, max: usize, out: &mut Vec<u8>) -> bool {
        let start = out.len();
        self.write(map, out);
        if out.len() - start <= max {
            true
        } else {
            out.truncate(start);
            false
        }
    }

    /// Writes `map` with the trim mark as its last member.
    fn write(&self, map: &Map<String, Value>, out: &mut Vec<u8>) {
        serde_json::to_writer(&mut *out, map).expect("writing JSON to memory cannot fail");
        out.pop(); // the closing brace: the mark goes in before it
        if !map.is_empty() {
            out.push(b',');
        }
        self.write_mark(out);
    }

    /// Writes the trim mark and the closing brace of the line.
    fn write_mark(&self, out: &mut Vec<u8>) {
        let mark = serde_json::json!({
            "fields": self.fields,
            "originalBytes": self.original_bytes,
        });
        write!(out, "\"{TRIM_MARK}\":{mark}}}").expect("writing JSON to memory cannot fail");
    }
}

/// The first trimming step (bulky parts, largest first, keep their short scalar members) done
/// on the record's text as written, without building its tree: nearly every oversized
/// CloudTrail record is made so by one large `responseElements` or `requestParameters`, and
/// rebuilding and re-serializing the whole record for it cost several times the rest of the
/// decode path. Gives the same line as [`Trim::fit`] would; `None` when this step is not
/// enough, or the record is not a plain object with distinct keys (then the full path
/// decides, and reports errors).
fn trim_as_written(text: &str, max: usize, out: &mut Vec<u8>) -> Option<Shape> {
    let RawMembers(members) = serde_json::from_str(text).ok()?;
    for (i, (key, _)) in members.iter().enumerate() {
        if members[..i].iter().any(|(other, _)| other == key) {
            return None;
        }
    }
    let raw_of = |name: &str| {
        members
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.get())
    };
    let mut bulky: Vec<(usize, &'static str)> = BULKY
        .iter()
        .filter_map(|&name| raw_of(name).map(|raw| (raw.len(), name)))
        .collect();
    bulky.sort_by_key(|entry| std::cmp::Reverse(entry.0));
    let mut trim = Trim::new(text.len());
    let mut shrunk: Vec<(&str, String)> = Vec::new();
    for (_, name) in bulky {
        shrunk.push((name, shrink_as_written(raw_of(name)?)?));
        trim.touch(name);
        let start = out.len();
        out.push(b'{');
        for (key, raw) in &members {
            serde_json::to_writer(&mut *out, key).ok()?;
            out.push(b':');
            match shrunk.iter().find(|(name, _)| name == key) {
                Some((_, value)) => out.extend_from_slice(value.as_bytes()),
                None => out.extend_from_slice(raw.get().as_bytes()),
            }
            out.push(b',');
        }
        trim.write_mark(out);
        if out.len() - start <= max {
            return Some(Shape::Trimmed);
        }
        out.truncate(start);
    }
    None
}

/// [`shrink`] of a value given as compact text: for an object, only its top-level members
/// are looked at, never built; anything else goes through [`shrink`].
fn shrink_as_written(raw: &str) -> Option<String> {
    const SHORT_STRING: usize = 64;
    if !raw.starts_with('{') {
        let value: Value = serde_json::from_str(raw).ok()?;
        return serde_json::to_string(&shrink(&value)).ok();
    }
    let RawMembers(members) = serde_json::from_str(raw).ok()?;
    let mut kept = String::from("{");
    for (key, value) in &members {
        let value = value.get();
        let short = match value.as_bytes()[0] {
            b'{' | b'[' => false,
            b'"' if !value.contains('\\') => value.len() - 2 <= SHORT_STRING,
            b'"' => serde_json::from_str::<String>(value).ok()?.len() <= SHORT_STRING,
            _ => true,
        };
        if short {
            if kept.len() > 1 {
                kept.push(',');
            }
            kept.push_str(&serde_json::to_string(key).ok()?);
            kept.push(':');
            kept.push_str(value);
        }
    }
    kept.push('}');
    Some(kept)
}

/// The members of a JSON object in order, each value as its text.
struct RawMembers<'a>(Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for RawMembers<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = RawMembers<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<String, &'de RawValue>()? {
                    members.push(member);
                }
                Ok(RawMembers(members))
            }
        }
        deserializer.deserialize_map(Members)
    }
}

/// `names` that `map` holds, largest serialized value first.
fn by_size_desc(map: &Map<String, Value>, names: &[&'static str]) -> Vec<&'static str> {
    let mut present: Vec<(usize, &'static str)> = names
        .iter()
        .filter_map(|&n| map.get(n).map(|v| (json_len(v), n)))
        .collect();
    // A stable sort keeps the order of `names` among equals.
    present.sort_by_key(|entry| std::cmp::Reverse(entry.0));
    present.into_iter().map(|(_, n)| n).collect()
}

/// What is left of a bulky value after a light trim: for an object, its short scalar
/// members (such as `"ConsoleLogin":"Failure"`, which rules match); for an array, its first
/// few elements, each shrunk; long strings shortened.
fn shrink(value: &Value) -> Value {
    const KEPT_ELEMENTS: usize = 3;
    const SHORT_STRING: usize = 64;
    match value {
        Value::Object(members) => Value::Object(
            members
                .iter()
                .filter(|(_, v)| match v {
                    Value::String(s) => s.len() <= SHORT_STRING,
                    Value::Object(_) | Value::Array(_) => false,
                    _ => true,
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().take(KEPT_ELEMENTS).map(shrink).collect()),
        Value::String(s) => Value::String(shortened(s, SHORT_STRING * 4)),
        other => other.clone(),
    }
}

/// Shortens every string under `value` whose JSON form is longer than `limit` bytes.
fn shorten_strings(value: &mut Value, limit: usize) {
    match value {
        Value::String(s) if escaped_len(s) > limit => *s = shortened(s, limit),
        Value::Array(items) => items.iter_mut().for_each(|v| shorten_strings(v, limit)),
        Value::Object(members) => members.values_mut().for_each(|v| shorten_strings(v, limit)),
        _ => {}
    }
}

/// The longest prefix of `s` whose JSON form, with a `...` suffix, fits in `limit` bytes.
fn shortened(s: &str, limit: usize) -> String {
    const ELLIPSIS: &str = "...";
    let budget = limit.saturating_sub(ELLIPSIS.len() + 2);
    let mut used = 0;
    let mut end = 0;
    for (i, c) in s.char_indices() {
        used += escaped_char_len(c);
        if used > budget {
            break;
        }
        end = i + c.len_utf8();
    }
    if end == s.len() {
        return s.to_owned();
    }
    format!("{}{ELLIPSIS}", &s[..end])
}

/// Bytes that `s` takes as a JSON string, quotes included.
fn escaped_len(s: &str) -> usize {
    2 + s.chars().map(escaped_char_len).sum::<usize>()
}

fn escaped_char_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// Bytes that `value` takes as compact JSON.
fn json_len(value: &Value) -> usize {
    struct Count(usize);
    impl Write for Count {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    serde_json::to_writer(&mut count, value).expect("counting bytes cannot fail");
    count.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str, compact: bool, max: usize) -> Result<(String, Shape), FlattenError> {
        let mut out = Vec::new();
        let shape = flatten(
            RawRecord {
                text: text.as_bytes(),
                compact,
            },
            max,
            &mut out,
        )?;
        Ok((String::from_utf8(out).unwrap(), shape))
    }

    fn parsed(line: &str) -> Map<String, Value> {
        serde_json::from_str(line).expect("every line is valid JSON")
    }

    /// A record shaped like CloudTrail's, with `bulk` bytes of responseElements.
    fn record(bulk: usize) -> String {
        format!(
            concat!(
                r#"{{"eventVersion":"1.09","userIdentity":{{"type":"IAMUser","principalId":"AIDAEXAMPLE","#,
                r#""arn":"arn:aws:iam::111122223333:user/alice","accountId":"111122223333","userName":"alice"}},"#,
                r#""eventTime":"2026-11-20T10:00:00Z","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","#,
                r#""awsRegion":"us-east-1","sourceIPAddress":"203.0.113.45","userAgent":"aws-cli/2.15","#,
                r#""errorCode":"Client.UnauthorizedOperation","errorMessage":"You are not authorized","#,
                r#""requestParameters":{{"instanceType":"t3.micro","blob":"{}"}},"#,
                r#""responseElements":{{"ConsoleLogin":"Failure","items":"{}"}},"#,
                r#""eventID":"0e1f7f4a-0000-4000-8000-000000000001","readOnly":false,"#,
                r#""recipientAccountId":"111122223333"}}"#
            ),
            "r".repeat(bulk / 4),
            "x".repeat(bulk)
        )
    }

    #[test]
    fn compact_small_records_pass_through_untouched() {
        let text = record(10);
        let (out, shape) = line(&text, true, 5630).unwrap();
        assert_eq!(shape, Shape::AsWritten);
        assert_eq!(out, text);
    }

    #[test]
    fn whitespace_is_removed_and_key_order_kept() {
        let (out, shape) =
            line("{ \"z\": 1,\n \"a\": [1, 2], \"m\": \"a b\" }", false, 5630).unwrap();
        assert_eq!(shape, Shape::Compacted);
        assert_eq!(out, r#"{"z":1,"a":[1,2],"m":"a b"}"#);
    }

    #[test]
    fn invalid_records_are_errors() {
        for bad in [
            r#"{"a":}"#,
            r#"{"a":tru}"#,
            "{\"a\":\"raw\nnewline\"}",
            r#"{"a":1,}"#,
            r#"{"a":"\q"}"#,
            "null",
            "[1,2]",
            r#""text""#,
        ] {
            assert!(line(bad, true, 5630).is_err(), "{bad:?} must be rejected");
            assert!(line(bad, false, 5630).is_err(), "{bad:?} must be rejected");
        }
        let mut out = Vec::new();
        let bad_utf8 = RawRecord {
            text: b"{\"a\":\"\xff\"}",
            compact: true,
        };
        assert!(flatten(bad_utf8, 5630, &mut out).is_err());
    }

    #[test]
    fn oversized_records_fit_stay_valid_and_keep_the_key_fields() {
        for (bulk, max) in [
            (6_000, 5630),
            (20_000, 5630),
            (200_000, 5630),
            (70_000, 65024),
        ] {
            let text = record(bulk);
            let (out, shape) = line(&text, true, max).unwrap();
            assert_eq!(shape, Shape::Trimmed, "bulk {bulk}");
            assert!(out.len() <= max, "bulk {bulk}: {} bytes", out.len());
            let map = parsed(&out);
            for field in ALWAYS_KEPT {
                assert!(map.contains_key(field), "bulk {bulk}: {field} was dropped");
            }
            assert_eq!(map["errorCode"], "Client.UnauthorizedOperation");
            assert_eq!(map[TRIM_MARK]["originalBytes"], text.len());
            assert!(
                out.contains(r#""ConsoleLogin":"Failure""#),
                "short members survive"
            );
            assert!(out.ends_with(r#"}}"#));
        }
    }

    #[test]
    fn trimming_takes_the_largest_bulky_part_first() {
        let text = record(6_000);
        let (out, _) = line(&text, true, 5630).unwrap();
        let map = parsed(&out);
        assert_eq!(
            map[TRIM_MARK]["fields"],
            serde_json::json!(["responseElements"])
        );
        assert_eq!(map["requestParameters"]["instanceType"], "t3.micro");
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        assert_eq!(keys.first(), Some(&"eventVersion"), "order is kept");
        assert_eq!(keys.last(), Some(&TRIM_MARK));
    }

    #[test]
    fn even_huge_kept_fields_fit_the_smallest_limit() {
        let huge = "é\"\u{1}".repeat(10_000);
        let mut map: Map<String, Value> = parsed(&record(100));
        for field in ALWAYS_KEPT {
            map.insert(field.to_owned(), Value::String(huge.clone()));
        }
        map.insert("custom".into(), Value::String(huge.clone()));
        let text = serde_json::to_string(&map).unwrap();
        let (out, shape) = line(&text, true, MIN_LINE_BYTES).unwrap();
        assert_eq!(shape, Shape::Trimmed);
        assert!(out.len() <= MIN_LINE_BYTES, "{} bytes", out.len());
        let map = parsed(&out);
        for field in ALWAYS_KEPT {
            assert!(map.contains_key(field), "{field} was dropped");
        }
        assert!(!map.contains_key("custom"));
        assert_eq!(
            map[TRIM_MARK]["fields"],
            serde_json::json!(["responseElements", "requestParameters", OTHER_FIELDS])
        );
    }

    #[test]
    fn trimming_the_text_as_written_gives_the_same_line_as_the_tree() {
        let mut escaped: Map<String, Value> = parsed(&record(100));
        escaped.insert(
            "responseElements".into(),
            serde_json::json!({"note": "say \"hi\" é", "long": "x".repeat(7_000), "n": 3,
                               "list": [1, 2], "ok": true, "nothing": null}),
        );
        let mut array: Map<String, Value> = parsed(&record(100));
        array.insert(
            "responseElements".into(),
            serde_json::json!([{"a": "b", "big": "y".repeat(4_000)}, "z".repeat(3_000), 4, 5]),
        );
        for text in [
            record(6_000),
            record(9_000),
            serde_json::to_string(&escaped).unwrap(),
            serde_json::to_string(&array).unwrap(),
        ] {
            let mut fast = Vec::new();
            let shape = trim_as_written(&text, 5630, &mut fast);
            assert_eq!(shape, Some(Shape::Trimmed), "{}", &text[..200]);
            let mut slow = Vec::new();
            let mut map: Map<String, Value> = serde_json::from_str(&text).unwrap();
            Trim::new(text.len()).fit(&mut map, 5630, &mut slow);
            assert_eq!(
                String::from_utf8(fast).unwrap(),
                String::from_utf8(slow).unwrap()
            );
        }
        // Not enough, or duplicate keys: the tree decides.
        let mut long_agent: Map<String, Value> = parsed(&record(6_000));
        long_agent.insert("userAgent".into(), Value::String("u".repeat(9_000)));
        let text = serde_json::to_string(&long_agent).unwrap();
        assert_eq!(trim_as_written(&text, 5630, &mut Vec::new()), None);
        assert_eq!(
            trim_as_written(r#"{"a":1,"a":2}"#, 5, &mut Vec::new()),
            None
        );
    }

    #[test]
    fn shortening_respects_characters_and_escapes() {
        let cases = [
            ("short", 100, "short"),
            ("abcdefghij", 9, "abcd..."),
            ("ééééé", 10, "éé..."),
            ("\"\"\"\"", 9, "\"\"..."),
        ];
        for (input, limit, want) in cases {
            let got = shortened(input, limit);
            assert_eq!(got, want, "{input:?} to {limit}");
            assert!(escaped_len(&got) <= limit.max(escaped_len(input).min(limit)));
        }
    }
}
