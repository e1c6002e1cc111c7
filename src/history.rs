//! The last runs, remembered in a small file beside the state database, so that a run can
//! say "recovered" after failing ones and `state show` can tell someone on the agent host
//! what the agent never shows (its stderr goes nowhere).
//!
//! The file (`runs`, JSON lines, the newest last) holds at most [`KEPT`] runs of every bucket
//! and prefix that share the state directory. It lives outside the sled database on purpose:
//! a run whose database cannot be opened is exactly one that must be remembered. It is
//! rewritten whole through a temporary file and a rename, so a crash leaves either the old or
//! the new file. Dry runs and runs that found the state busy write nothing.
//!
//! This module does not decide what a run's outcome is (`status` does) or print anything.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Runs kept in the file, all scopes together.
pub const KEPT: usize = 20;

const FILE: &str = "runs";

/// One run as remembered.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub started: OffsetDateTime,
    pub bucket: String,
    pub prefix: String,
    /// `ok`, `behind`, `partial`, `failed` or `no_logs` (see `status::Kind`).
    pub outcome: String,
    pub exit_code: u8,
    pub lines: u64,
    pub objects: u64,
    pub failed_objects: u64,
    /// Objects left for the next run by the line budget.
    pub pending_objects: u64,
    /// How old the oldest object left for the next run is, by its delivery time.
    pub lag_seconds: Option<i64>,
    /// The first error of the run, as on stderr.
    pub first_error: Option<String>,
    pub elapsed_ms: u64,
}

impl Run {
    /// The collector did not do its job. A run whose digest verification found tampering
    /// did (that is its job), so the next one does not "recover" from it.
    pub fn failed(&self) -> bool {
        self.exit_code != crate::cli::exit::OK && self.exit_code != crate::cli::exit::INTEGRITY
    }

    fn to_json(&self) -> Value {
        let mut map = Map::new();
        let started = self.started.format(&Rfc3339).unwrap_or_default();
        map.insert("started".into(), json!(started));
        map.insert("bucket".into(), json!(self.bucket));
        map.insert("prefix".into(), json!(self.prefix));
        map.insert("outcome".into(), json!(self.outcome));
        map.insert("exitCode".into(), json!(self.exit_code));
        map.insert("lines".into(), json!(self.lines));
        map.insert("objects".into(), json!(self.objects));
        map.insert("failedObjects".into(), json!(self.failed_objects));
        map.insert("pendingObjects".into(), json!(self.pending_objects));
        if let Some(lag) = self.lag_seconds {
            map.insert("lagSeconds".into(), json!(lag));
        }
        if let Some(error) = &self.first_error {
            map.insert("firstError".into(), json!(error));
        }
        map.insert("elapsedMs".into(), json!(self.elapsed_ms));
        Value::Object(map)
    }

    fn from_json(value: &Value) -> Option<Run> {
        let text = |k: &str| value.get(k)?.as_str().map(str::to_owned);
        let num = |k: &str| value.get(k).and_then(Value::as_u64).unwrap_or(0);
        Some(Run {
            started: OffsetDateTime::parse(&text("started")?, &Rfc3339).ok()?,
            bucket: text("bucket")?,
            prefix: text("prefix").unwrap_or_default(),
            outcome: text("outcome")?,
            exit_code: u8::try_from(num("exitCode")).ok()?,
            lines: num("lines"),
            objects: num("objects"),
            failed_objects: num("failedObjects"),
            pending_objects: num("pendingObjects"),
            lag_seconds: value.get("lagSeconds").and_then(Value::as_i64),
            first_error: text("firstError"),
            elapsed_ms: num("elapsedMs"),
        })
    }
}

/// The runs file of one state directory.
pub struct History {
    path: PathBuf,
}

impl History {
    pub fn at(state_dir: &Path) -> History {
        History {
            path: state_dir.join(FILE),
        }
    }

    /// Every run remembered, oldest first. A missing or unreadable file is an empty history:
    /// it only ever informs, it never stops a run. Lines that do not parse are skipped.
    pub fn runs(&self) -> Vec<Run> {
        let Ok(text) = fs::read_to_string(&self.path) else {
            return Vec::new();
        };
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| Run::from_json(&v))
            .collect()
    }

    /// The runs of one bucket and prefix, oldest first.
    pub fn runs_of(&self, bucket: &str, prefix: &str) -> Vec<Run> {
        self.runs()
            .into_iter()
            .filter(|r| r.bucket == bucket && r.prefix == prefix)
            .collect()
    }

    /// Adds `run`, keeping the newest [`KEPT`]. Needs the state directory to exist.
    pub fn record(&self, run: &Run) -> io::Result<()> {
        let mut runs = self.runs();
        runs.push(run.clone());
        let skip = runs.len().saturating_sub(KEPT);
        let mut text = String::new();
        for run in &runs[skip..] {
            text.push_str(&run.to_json().to_string());
            text.push('\n');
        }
        let tmp = self.path.with_extension("tmp");
        fs::write(&tmp, text)?;
        fs::rename(&tmp, &self.path)
    }
}

/// How many runs of `runs` (oldest first) failed in a row at its end, and when the first of
/// them started.
pub fn failing_streak(runs: &[Run]) -> Option<(usize, OffsetDateTime)> {
    let streak: Vec<&Run> = runs.iter().rev().take_while(|r| r.failed()).collect();
    let first = streak.last()?;
    Some((streak.len(), first.started))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(bucket: &str, exit_code: u8, minute: i64) -> Run {
        Run {
            started: OffsetDateTime::UNIX_EPOCH + time::Duration::minutes(minute),
            bucket: bucket.to_owned(),
            prefix: String::new(),
            outcome: if exit_code == 0 { "ok" } else { "failed" }.to_owned(),
            exit_code,
            lines: 3,
            objects: 1,
            failed_objects: 0,
            pending_objects: 0,
            lag_seconds: None,
            first_error: (exit_code != 0).then(|| "access denied on s3://b/".to_owned()),
            elapsed_ms: 12,
        }
    }

    #[test]
    fn keeps_the_newest_runs_and_reads_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let history = History::at(dir.path());
        assert!(history.runs().is_empty());
        for minute in 0..(KEPT as i64 + 5) {
            history
                .record(&run("b", (minute % 2) as u8, minute))
                .unwrap();
        }
        let runs = history.runs();
        assert_eq!(runs.len(), KEPT);
        assert_eq!(runs[0], run("b", 1, 5));
        assert_eq!(runs.last().unwrap(), &run("b", 0, KEPT as i64 + 4));
    }

    #[test]
    fn a_streak_counts_the_failed_runs_at_the_end() {
        let runs = vec![
            run("b", 1, 0),
            run("b", 0, 1),
            run("b", 1, 2),
            run("b", 5, 3),
        ];
        let (count, since) = failing_streak(&runs).unwrap();
        assert_eq!(count, 2);
        assert_eq!(since, runs[2].started);
        assert_eq!(failing_streak(&runs[..2]), None);
        assert_eq!(failing_streak(&[]), None);
    }

    #[test]
    fn scopes_are_kept_apart_and_damage_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let history = History::at(dir.path());
        history.record(&run("a", 1, 0)).unwrap();
        history.record(&run("b", 0, 1)).unwrap();
        let mut text = fs::read_to_string(dir.path().join(FILE)).unwrap();
        text.push_str("{not json\n");
        fs::write(dir.path().join(FILE), text).unwrap();
        assert_eq!(history.runs_of("a", ""), vec![run("a", 1, 0)]);
        assert_eq!(history.runs().len(), 2);
    }
}
