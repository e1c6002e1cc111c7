//! Writes lines to stdout within the run's line budget, and flushes them before anyone may
//! record them as printed.
//!
//! stdout carries nothing but record lines: every diagnostic goes to stderr through
//! `tracing`. This module does not know what a record is; it counts newline-terminated lines.

use std::io::{self, Write};

/// The print stage: a writer and how many lines it may still take this run.
pub struct Output<W: Write> {
    out: W,
    remaining: u64,
    written: u64,
}

impl<W: Write> Output<W> {
    pub fn new(out: W, budget: u64) -> Self {
        Output {
            out,
            remaining: budget,
            written: 0,
        }
    }

    /// Lines that the budget still allows.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Lines written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Writes as many of `count` newline-terminated `lines` as the budget allows, then flushes.
    /// Returns how many were written.
    pub fn write_lines(&mut self, lines: &[u8], count: u64) -> io::Result<u64> {
        let take = count.min(self.remaining);
        let end = if take == count {
            lines.len()
        } else {
            nth_line_end(lines, take)
        };
        self.out.write_all(&lines[..end])?;
        self.out.flush()?;
        self.remaining -= take;
        self.written += take;
        Ok(take)
    }

    /// Writes one line (a newline is added), counting it against the budget. The caller must
    /// check [`Output::remaining`] first and call [`Output::flush`] before recording progress.
    pub fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        debug_assert!(self.remaining > 0);
        self.out.write_all(line)?;
        self.out.write_all(b"\n")?;
        self.remaining -= 1;
        self.written += 1;
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// The byte offset just past the `n`th newline of `lines` (`n` > 0).
fn nth_line_end(lines: &[u8], n: u64) -> usize {
    if n == 0 {
        return 0;
    }
    let mut seen = 0;
    for (i, &b) in lines.iter().enumerate() {
        if b == b'\n' {
            seen += 1;
            if seen == n {
                return i + 1;
            }
        }
    }
    lines.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_at_the_budget_on_a_line_boundary() {
        let mut out = Output::new(Vec::new(), 3);
        assert_eq!(out.write_lines(b"a\nb\n", 2).unwrap(), 2);
        assert_eq!(out.write_lines(b"c\nd\ne\n", 3).unwrap(), 1);
        assert_eq!(out.remaining(), 0);
        assert_eq!(out.write_lines(b"f\n", 1).unwrap(), 0);
        assert_eq!(out.written(), 3);
        assert_eq!(out.out, b"a\nb\nc\n");
    }

    #[test]
    fn a_closed_stdout_is_an_error() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut out = Output::new(Closed, 10);
        assert!(out.write_lines(b"a\n", 1).is_err());
        assert_eq!(out.written(), 0);
    }
}
