//! The collector's own status events: how a run ended, as lines on stdout beside the records.
//!
//! Under an OSSEC or Wazuh agent, a command's stderr goes nowhere and its exit code is
//! ignored: stdout is the only way to the manager. So a run that fails, is partial, finds no
//! logs or cannot keep up also prints one line saying so, and the first good run after
//! failing ones says it recovered; the rule pack turns those lines into alerts. A status line
//! is a JSON object with the single member `ossecCloudtrail`, which no CloudTrail record has:
//!
//! ```text
//! {"ossecCloudtrail":{"kind":"failed","bucket":"b","prefix":"","message":"...","exitCode":1,"reason":"access_denied"}}
//! ```
//!
//! `kind`, `bucket`, `prefix`, `message` (the text stderr shows, never a secret) and
//! `exitCode` come first, in that order, in every event; the decoders rely on it. Then each
//! kind adds its details:
//!
//! | kind | when | details |
//! |---|---|---|
//! | `failed` | the run could not proceed (credentials, access denied, bucket missing or in a region it cannot follow, S3 unreachable, state busy or damaged) | `reason` |
//! | `partial` | some objects or records could not be read; the rest was printed | `failedObjects`, `invalidRecords`, `errors` (the first few `{key, reason}`) |
//! | `behind` | the line budget ended the run with objects left | `pendingObjects`, `oldestPending` (its delivery time), `lagSeconds` |
//! | `no_logs` | the bucket holds no CloudTrail logs under the prefix | - |
//! | `recovered` | the first good run after failing ones (said once) | `failedRuns`, `failingSince`, `lastError` |
//!
//! With `--validate-digests`, each finding of digest verification (`digest`) is one more
//! event, printed once, with `exitCode` 6 and the `account` and `region` first among its
//! details:
//!
//! | kind | when | details |
//! |---|---|---|
//! | `log_deleted` | a digest lists a log file the bucket no longer has | `key`, `digest`, `delivered`, `digestEndTime` |
//! | `log_altered` | a log file's SHA-256 is not the one its digest recorded | `key`, `digest`, `sha256`, `expectedSha256`, `delivered`, `digestEndTime` |
//! | `digest_missing` | the chain names a digest the bucket does not have | `digest`, `nextDigest`, `digestEndTime` |
//! | `digest_invalid` | a digest's signature does not verify, it was moved, or is unreadable | `digest`, `reason`, `digestEndTime` |
//! | `digest_chain_broken` | a digest records another signature for the one before it | `digest`, `previousDigest`, `digestEndTime` |
//! | `digest_late` | hours of printed log files that no digest covered two hours later | `key` (the oldest), `since`, `logFiles` |
//!
//! Apart from those, a run prints at most two (a partial run that also fell behind prints both). Failures
//! repeat at every run while they last. A line never exceeds the run's line limit:
//! details go first, then the message is shortened. This module decides which events a run
//! gets and writes them; it does not print records or keep the history (`history` does).

use std::fmt;
use std::io::{self, Write};

use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::cli::exit;
use crate::collect::{RunError, Summary};
use crate::history::{self, Run};
use crate::layout;
use crate::s3::S3ErrorKind;
use crate::sqs::SqsErrorKind;
use crate::state::StateError;

/// The member that marks a line as the collector's own.
pub const MARK: &str = "ossecCloudtrail";

/// What a status event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Failed,
    Partial,
    Behind,
    NoLogs,
    Recovered,
    /// Digest findings (`digest`), one event each.
    LogDeleted,
    LogAltered,
    DigestMissing,
    DigestInvalid,
    DigestChainBroken,
    DigestLate,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Failed => "failed",
            Kind::Partial => "partial",
            Kind::Behind => "behind",
            Kind::NoLogs => "no_logs",
            Kind::Recovered => "recovered",
            Kind::LogDeleted => "log_deleted",
            Kind::LogAltered => "log_altered",
            Kind::DigestMissing => "digest_missing",
            Kind::DigestInvalid => "digest_invalid",
            Kind::DigestChainBroken => "digest_chain_broken",
            Kind::DigestLate => "digest_late",
        })
    }
}

/// One status line to print.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: Kind,
    pub bucket: String,
    pub prefix: String,
    pub message: String,
    pub exit_code: u8,
    /// The kind's own members, in the order they are written.
    pub details: Vec<(&'static str, Value)>,
}

/// Messages are cut to this many characters before the line limit is even considered.
const MESSAGE_CHARS: usize = 1000;

impl Event {
    /// The event as one line of compact JSON (no newline), at most `max_bytes` long:
    /// details are dropped from the last, then the message is shortened, until it fits.
    pub fn line(&self, max_bytes: usize) -> String {
        let mut details = self.details.len();
        let mut message_chars = MESSAGE_CHARS;
        loop {
            let line = self.render(details, message_chars);
            if line.len() <= max_bytes || (details == 0 && message_chars == 0) {
                return line;
            }
            if details > 0 {
                details -= 1;
            } else {
                message_chars /= 2;
            }
        }
    }

    fn render(&self, details: usize, message_chars: usize) -> String {
        let mut inner = Map::new();
        inner.insert("kind".into(), json!(self.kind.to_string()));
        inner.insert("bucket".into(), json!(self.bucket));
        inner.insert("prefix".into(), json!(shorten(&self.prefix, 200)));
        inner.insert(
            "message".into(),
            json!(shorten(&self.message, message_chars)),
        );
        inner.insert("exitCode".into(), json!(self.exit_code));
        for (name, value) in &self.details[..details] {
            inner.insert((*name).into(), value.clone());
        }
        let mut outer = Map::new();
        outer.insert(MARK.into(), Value::Object(inner));
        Value::Object(outer).to_string()
    }
}

fn shorten(text: &str, chars: usize) -> String {
    // One line whatever the message: a newline would split the event in two.
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() <= chars {
        return flat;
    }
    let mut cut: String = flat.chars().take(chars.saturating_sub(3)).collect();
    cut.push_str("...");
    cut
}

/// How a run ended, in the terms of status events and the history.
pub struct Outcome {
    pub exit_code: u8,
    /// The run's own events: none for a run that went well, two for a partial one that also
    /// fell behind.
    pub events: Vec<Event>,
    /// What the history remembers of it.
    pub run: Run,
}

/// Sorts a finished run into its outcome. `started` is when it began.
pub fn outcome(
    bucket: &str,
    prefix: &str,
    result: &Result<Summary, RunError>,
    started: OffsetDateTime,
) -> Outcome {
    let now = OffsetDateTime::now_utc();
    let event = |kind, message: String, exit_code, details| Event {
        kind,
        bucket: bucket.to_owned(),
        prefix: prefix.to_owned(),
        message,
        exit_code,
        details,
    };
    let mut run = Run {
        started,
        bucket: bucket.to_owned(),
        prefix: prefix.to_owned(),
        outcome: "ok".to_owned(),
        exit_code: exit::OK,
        lines: 0,
        objects: 0,
        failed_objects: 0,
        pending_objects: 0,
        lag_seconds: None,
        first_error: None,
        elapsed_ms: u64::try_from((now - started).whole_milliseconds()).unwrap_or(0),
    };
    let summary = match result {
        Err(e) => {
            let exit_code = e.exit_code();
            run.outcome = Kind::Failed.to_string();
            run.exit_code = exit_code;
            run.first_error = Some(e.to_string());
            let details = vec![("reason", json!(reason(e)))];
            return Outcome {
                exit_code,
                events: vec![event(Kind::Failed, e.to_string(), exit_code, details)],
                run,
            };
        }
        Ok(summary) => summary,
    };
    run.lines = summary.lines;
    run.objects = summary.objects_done;
    run.failed_objects = summary.failed_objects;
    run.pending_objects = summary.pending_objects;
    // Fetch errors name the object themselves; decode errors do not.
    run.first_error = summary.errors.first().map(|e| {
        if e.reason.contains(&e.key) {
            e.reason.clone()
        } else {
            format!("{}: {}", e.key, e.reason)
        }
    });
    let oldest = summary
        .oldest_pending
        .as_deref()
        .and_then(layout::delivery_time);
    run.lag_seconds = oldest.map(|t| (now - t).whole_seconds().max(0));

    let behind = summary.budget_reached.then(|| {
        let mut details = vec![("pendingObjects", json!(summary.pending_objects))];
        if let (Some(t), Some(lag)) = (oldest, run.lag_seconds) {
            details.push((
                "oldestPending",
                json!(t.format(&Rfc3339).unwrap_or_default()),
            ));
            details.push(("lagSeconds", json!(lag)));
        }
        let message = format!(
            "falling behind: the line budget (--max-lines) ended the run with {} objects left{}; \
             the next run continues from there (raise --max-lines or run more often if this \
             repeats)",
            summary.pending_objects,
            run.lag_seconds
                .map(|lag| format!(", the oldest delivered {} ago", human_duration(lag)))
                .unwrap_or_default()
        );
        event(Kind::Behind, message, exit::OK, details)
    });
    if summary.is_partial() {
        run.outcome = Kind::Partial.to_string();
        run.exit_code = exit::PARTIAL;
        let errors: Vec<Value> = summary
            .errors
            .iter()
            .map(|e| json!({"key": e.key, "reason": shorten(&e.reason, 300)}))
            .collect();
        let details = vec![
            ("failedObjects", json!(summary.failed_objects)),
            ("invalidRecords", json!(summary.bad_records)),
            ("errors", Value::Array(errors)),
        ];
        let message = format!(
            "{} objects could not be read and {} invalid records were skipped; the rest was \
             printed, and the objects are retried at every run. First: {}",
            summary.failed_objects,
            summary.bad_records,
            run.first_error.as_deref().unwrap_or("-")
        );
        let mut events = vec![event(Kind::Partial, message, exit::PARTIAL, details)];
        events.extend(behind);
        return Outcome {
            exit_code: exit::PARTIAL,
            events,
            run,
        };
    }
    if let Some(message) = &summary.no_logs {
        run.outcome = Kind::NoLogs.to_string();
        return Outcome {
            exit_code: exit::OK,
            events: vec![event(Kind::NoLogs, message.clone(), exit::OK, Vec::new())],
            run,
        };
    }
    let findings = summary.digests.as_ref().map_or(0, |d| d.findings);
    if findings > 0 {
        // The findings were printed as they were found; the exit code says it to a person.
        run.outcome = "integrity".to_owned();
        run.exit_code = exit::INTEGRITY;
        run.first_error = Some(format!(
            "digest verification: {findings} log files or digests deleted or altered"
        ));
        return Outcome {
            exit_code: exit::INTEGRITY,
            events: behind.into_iter().collect(),
            run,
        };
    }
    if let Some(behind) = behind {
        run.outcome = Kind::Behind.to_string();
        return Outcome {
            exit_code: exit::OK,
            events: vec![behind],
            run,
        };
    }
    Outcome {
        exit_code: exit::OK,
        events: Vec::new(),
        run,
    }
}

/// The event a good run prints when the runs before it (oldest first) failed.
pub fn recovery(outcome: &Outcome, earlier: &[Run]) -> Option<Event> {
    if outcome.run.failed() {
        return None;
    }
    let (count, since) = history::failing_streak(earlier)?;
    let last = earlier.last()?;
    let since_text = since.format(&Rfc3339).unwrap_or_default();
    Some(Event {
        kind: Kind::Recovered,
        bucket: outcome.run.bucket.clone(),
        prefix: outcome.run.prefix.clone(),
        message: format!(
            "recovered: this run went well after {count} failed or partial run(s) since \
             {since_text} (last error: {})",
            last.first_error.as_deref().unwrap_or("-")
        ),
        exit_code: outcome.exit_code,
        details: vec![
            ("failedRuns", json!(count)),
            ("failingSince", json!(since_text)),
            (
                "lastError",
                json!(last.first_error.as_deref().unwrap_or("")),
            ),
        ],
    })
}

/// Writes `events` to `out`, one line each, and flushes.
pub fn print(out: &mut impl Write, events: &[Event], max_line_bytes: usize) -> io::Result<()> {
    for event in events {
        out.write_all(event.line(max_line_bytes).as_bytes())?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// A word for rules and people to sort failures by.
fn reason(e: &RunError) -> &'static str {
    match e {
        RunError::State(StateError::Busy { .. }) => "state_busy",
        RunError::State(StateError::Io { .. }) => "state_unusable",
        RunError::State(_) => "state_damaged",
        RunError::Output(_) => "stdout_closed",
        RunError::Sqs(e) => match e.kind {
            SqsErrorKind::NoSuchQueue => "queue_missing",
            SqsErrorKind::AccessDenied => "access_denied",
            SqsErrorKind::BadCredentials => "bad_credentials",
            SqsErrorKind::NoCredentials => "no_credentials",
            SqsErrorKind::AssumeRoleDenied => "assume_role_denied",
            SqsErrorKind::Unreachable => "unreachable",
            SqsErrorKind::Other => "sqs_error",
        },
        RunError::S3(e) => match e.kind {
            S3ErrorKind::NoSuchBucket => "bucket_missing",
            S3ErrorKind::AccessDenied => "access_denied",
            S3ErrorKind::WrongRegion(_) => "wrong_region",
            S3ErrorKind::NoCredentials => "no_credentials",
            S3ErrorKind::BadCredentials => "bad_credentials",
            S3ErrorKind::AssumeRoleDenied(_) => "assume_role_denied",
            S3ErrorKind::Unreachable | S3ErrorKind::Timeout => "unreachable",
            S3ErrorKind::Other => "s3_error",
        },
    }
}

pub fn human_duration(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(message: &str, details: Vec<(&'static str, Value)>) -> Event {
        Event {
            kind: Kind::Partial,
            bucket: "trail".to_owned(),
            prefix: "logs/".to_owned(),
            message: message.to_owned(),
            exit_code: 3,
            details,
        }
    }

    #[test]
    fn a_line_starts_with_the_common_members_in_order() {
        let line = event("two objects failed", vec![("failedObjects", json!(2))]).line(5630);
        assert_eq!(
            line,
            r#"{"ossecCloudtrail":{"kind":"partial","bucket":"trail","prefix":"logs/","message":"two objects failed","exitCode":3,"failedObjects":2}}"#
        );
    }

    #[test]
    fn a_line_fits_the_limit_and_stays_one_line() {
        let long = "x".repeat(900) + "\nsecond line\r\n";
        let errors = json!([{"key": "k".repeat(400), "reason": "r".repeat(300)}]);
        for max in [1024, 1200, 5630] {
            let line = event(&long, vec![("errors", errors.clone())]).line(max);
            assert!(line.len() <= max, "{} > {max}", line.len());
            assert!(!line.contains('\n') && !line.contains('\r'));
            let parsed: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(parsed[MARK]["kind"], "partial");
        }
        let roomy = event(&long, vec![("errors", errors)]).line(5630);
        assert!(roomy.contains("\"errors\""), "details kept when they fit");
        let tight = event(&"y".repeat(5000), Vec::new()).line(1024);
        assert!(tight.len() <= 1024 && tight.contains("...\""));
    }

    #[test]
    fn human_durations() {
        for (s, want) in [
            (59, "59 s"),
            (600, "10 min"),
            (10_800, "3 h"),
            (900_000, "10 days"),
        ] {
            assert_eq!(human_duration(s), want);
        }
    }
}
