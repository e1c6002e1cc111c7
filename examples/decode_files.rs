//! The collector's decode-and-flatten path alone, over local `.json.gz` files: the benchmark
//! (`bench/run.sh`) times it against `zcat` and `zcat | jq -c` on the same files, so the
//! comparison holds no S3 and no state. One thread, like its yardsticks.
//!
//! Usage: `decode_files [--max-line-bytes N] FILE...` (or a folder, read recursively). Lines
//! go to stdout; a summary (records, bytes, seconds) goes to stderr.

// The real modules, not copies: what is measured is what the collector runs.
#[allow(dead_code)]
#[path = "../src/decode.rs"]
mod decode;
#[allow(dead_code)]
#[path = "../src/flatten.rs"]
mod flatten;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

fn main() -> io::Result<()> {
    let mut max_line_bytes = 5631;
    let mut files = Vec::new();
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--max-line-bytes" {
            let value = args.next().expect("--max-line-bytes needs a value");
            max_line_bytes = value.to_string_lossy().parse().expect("a number of bytes");
        } else {
            collect_files(PathBuf::from(arg), &mut files)?;
        }
    }
    files.sort();
    let started = Instant::now();
    let stdout = io::stdout().lock();
    let mut out = BufWriter::with_capacity(1 << 16, stdout);
    let mut line = Vec::with_capacity(max_line_bytes);
    let (mut records, mut trimmed, mut line_bytes) = (0u64, 0u64, 0u64);
    for path in &files {
        let reader = decode::open(File::open(path)?)?;
        let mut records_of = decode::RecordReader::new(reader);
        loop {
            let record = match records_of.next_record() {
                Ok(Some(record)) => record,
                Ok(None) => break,
                Err(e) => {
                    eprintln!("{}: {e}", path.display());
                    break;
                }
            };
            line.clear();
            match flatten::flatten(record, max_line_bytes, &mut line) {
                Ok(shape) => {
                    line.push(b'\n');
                    out.write_all(&line)?;
                    records += 1;
                    line_bytes += line.len() as u64;
                    trimmed += u64::from(shape == flatten::Shape::Trimmed);
                }
                Err(e) => eprintln!("{}: {e}", path.display()),
            }
        }
    }
    out.flush()?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "decode_files: {records} records ({trimmed} trimmed), {line_bytes} line bytes from {} \
         files in {seconds:.3} s",
        files.len()
    );
    Ok(())
}

fn collect_files(path: PathBuf, files: &mut Vec<PathBuf>) -> io::Result<()> {
    if path.is_dir() {
        for entry in std::fs::read_dir(&path)? {
            collect_files(entry?.path(), files)?;
        }
    } else if path.to_string_lossy().ends_with(".json.gz") {
        files.push(path);
    }
    Ok(())
}
