//! Writes lines to stdout within the run's line budget and rate, and flushes them before
//! anyone may record them as printed.
//!
//! stdout carries record lines and, after them, the run's status events (`status`); every
//! diagnostic goes to stderr through `tracing`. This module does not know what a record is;
//! it counts newline-terminated lines.

use std::io::{self, Write};
use std::time::{Duration, Instant};

/// The print stage: a writer, how many lines it may still take this run, and how fast.
pub struct Output<W: Write> {
    out: W,
    remaining: u64,
    written: u64,
    pace: Pace,
}

/// Spreads lines over time: line n goes out no earlier than n / rate seconds after the first,
/// so a run's lines reach the agent at the rate asked, never as one burst. The schedule is
/// absolute, so time lost to a slow download is made up by writing the lines that are due at
/// once, not by drifting below the rate.
struct Pace {
    /// Lines per second; 0 for no limit.
    rate: u32,
    first: Option<Instant>,
    paced: u64,
}

/// Waits shorter than this are not worth a sleep: the absolute schedule catches up.
const MIN_SLEEP: Duration = Duration::from_millis(1);

impl Pace {
    /// How long to wait before the next line may go out.
    fn wait(&mut self) -> Option<Duration> {
        if self.rate == 0 {
            return None;
        }
        let first = *self.first.get_or_insert_with(Instant::now);
        let due = first + Duration::from_secs_f64(self.paced as f64 / f64::from(self.rate));
        let wait = due.saturating_duration_since(Instant::now());
        (wait >= MIN_SLEEP).then_some(wait)
    }
}

impl<W: Write> Output<W> {
    /// `rate` is lines per second at most, 0 for no limit.
    pub fn new(out: W, budget: u64, rate: u32) -> Self {
        Output {
            out,
            remaining: budget,
            written: 0,
            pace: Pace {
                rate,
                first: None,
                paced: 0,
            },
        }
    }

    /// Waits for the pace to allow one more line; what was written before goes out first,
    /// so that the agent has it while this waits.
    fn pace_one(&mut self) -> io::Result<()> {
        if let Some(wait) = self.pace.wait() {
            self.out.flush()?;
            std::thread::sleep(wait);
        }
        self.pace.paced += 1;
        Ok(())
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
        if self.pace.rate == 0 {
            let end = if take == count {
                lines.len()
            } else {
                nth_line_end(lines, take)
            };
            self.out.write_all(&lines[..end])?;
        } else {
            let mut rest = lines;
            for _ in 0..take {
                self.pace_one()?;
                let end = nth_line_end(rest, 1);
                self.out.write_all(&rest[..end])?;
                rest = &rest[end..];
                // Counted as they go: a write error below leaves the count right.
                self.remaining -= 1;
                self.written += 1;
            }
            self.out.flush()?;
            return Ok(take);
        }
        self.out.flush()?;
        self.remaining -= take;
        self.written += take;
        Ok(take)
    }

    /// Writes one line (a newline is added), counting it against the budget. The caller must
    /// check [`Output::remaining`] first and call [`Output::flush`] before recording progress.
    pub fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        debug_assert!(self.remaining > 0);
        self.pace_one()?;
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
        let mut out = Output::new(Vec::new(), 3, 0);
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
        let mut out = Output::new(Closed, 10, 0);
        assert!(out.write_lines(b"a\n", 1).is_err());
        assert_eq!(out.written(), 0);
    }

    #[test]
    fn paced_lines_keep_the_rate_and_the_budget() {
        let mut out = Output::new(Vec::new(), 30, 1000);
        let started = Instant::now();
        let lines: Vec<u8> = (0..20)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        assert_eq!(out.write_lines(&lines, 20).unwrap(), 20);
        assert_eq!(out.write_lines(&lines, 20).unwrap(), 10);
        // 30 lines at 1000 a second: the 30th is due 29 ms after the first.
        assert!(started.elapsed() >= Duration::from_millis(28));
        assert_eq!(out.written(), 30);
        assert_eq!(out.out.iter().filter(|&&b| b == b'\n').count(), 30);
        assert!(out.out.starts_with(b"line 0\nline 1\n"));
    }
}
