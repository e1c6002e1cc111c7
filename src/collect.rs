//! One run of the collector: the settings it runs with, the source that finds its objects
//! (`listing` polls the bucket, `sqs` receives notifications), and what it did (its summary,
//! or the error that ended it). Both sources feed the same `pipeline`, which fetches,
//! decodes, flattens, prints and remembers.

use std::fmt;
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::{Duration as StdDuration, Instant};

use time::Date;

use crate::listing::{self, Filters, ListError};
use crate::s3::{Bucket, Connection, S3Error};
use crate::sqs::{self, SqsError};
use crate::state::{State, StateError};

/// Everything a run needs to know, resolved from the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    pub bucket: String,
    /// Normalized: empty, or ending in `/`.
    pub prefix: String,
    pub connection: Connection,
    pub state_path: PathBuf,
    /// `--only-logs-after`, when given.
    pub only_logs_after: Option<Date>,
    /// Where a partition never seen before starts when `--only-logs-after` is not given.
    pub default_start: Date,
    pub filters: Filters,
    /// Receive notifications from this SQS queue instead of listing the bucket.
    pub sqs_queue_url: Option<String>,
    /// `--validate-digests`.
    pub digests: Option<DigestSettings>,
    pub max_lines: u64,
    pub max_line_bytes: usize,
    /// Lines per second at most (0: no limit).
    pub max_rate: u32,
    /// Print status events (the main job's business; the run itself prints only records).
    pub status_events: bool,
    pub dry_run: bool,
    pub lookback_days: u32,
    pub concurrency: usize,
}

/// How digests are verified.
#[derive(Debug, Clone, Default)]
pub struct DigestSettings {
    /// `--digest-public-keys`: CloudTrail's keys from this file, not from ListPublicKeys.
    pub public_keys: Option<PathBuf>,
}

/// What a run did, for the closing message and the exit code.
#[derive(Debug, Default)]
pub struct Summary {
    pub partitions: usize,
    pub objects_done: u64,
    pub lines: u64,
    pub trimmed: u64,
    /// Objects that could not be (fully) read this run; they are retried next run.
    pub failed_objects: u64,
    /// Records that were not valid JSON, reported and skipped.
    pub bad_records: u64,
    /// The line budget ran out before the queue did.
    pub budget_reached: bool,
    /// Objects the line budget left for the next run (the one it stopped inside included).
    pub pending_objects: u64,
    /// The delivery stamp (`YYYYMMDDTHHmmZ_...`) of the oldest of them.
    pub oldest_pending: Option<String>,
    /// The first objects that could not be read, with the reason (at most [`ERRORS_KEPT`]).
    pub errors: Vec<ObjectError>,
    /// Set when the bucket holds no CloudTrail logs under the prefix: what it holds instead.
    pub no_logs: Option<String>,
    pub pruned: usize,
    /// What `--validate-digests` did.
    pub digests: Option<crate::digest::Report>,
    pub elapsed: StdDuration,
}

/// How many failed objects a summary names; the others are only counted.
pub const ERRORS_KEPT: usize = 3;

/// An object that could not be (fully) read this run.
#[derive(Debug, Clone)]
pub struct ObjectError {
    pub key: String,
    pub reason: String,
}

impl Summary {
    /// Adds what a later batch of the same run did.
    pub fn absorb(&mut self, batch: Summary) {
        self.objects_done += batch.objects_done;
        self.lines += batch.lines;
        self.trimmed += batch.trimmed;
        self.failed_objects += batch.failed_objects;
        self.bad_records += batch.bad_records;
        if batch.budget_reached && !self.budget_reached {
            self.budget_reached = true;
            self.pending_objects = batch.pending_objects;
            self.oldest_pending = batch.oldest_pending;
        }
        for error in batch.errors {
            if self.errors.len() < ERRORS_KEPT {
                self.errors.push(error);
            }
        }
    }

    /// Something was reported that a person should look at.
    pub fn is_partial(&self) -> bool {
        self.failed_objects > 0 || self.bad_records > 0
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} lines from {} objects in {} partitions ({} trimmed) in {:.1}s",
            self.lines,
            self.objects_done,
            self.partitions,
            self.trimmed,
            self.elapsed.as_secs_f64()
        )?;
        if self.failed_objects > 0 {
            write!(
                f,
                "; {} objects failed and will be retried",
                self.failed_objects
            )?;
        }
        if self.bad_records > 0 {
            write!(f, "; {} invalid records skipped", self.bad_records)?;
        }
        if self.budget_reached {
            write!(f, "; line budget reached, the next run continues from here")?;
        }
        if let Some(d) = &self.digests {
            write!(
                f,
                "; digests: {} verified, {} log files matched, {} printed before verification, \
                 {} findings",
                d.digests, d.log_files, d.unhashed, d.findings
            )?;
            if d.failed > 0 {
                write!(f, ", {} digests to retry", d.failed)?;
            }
        }
        Ok(())
    }
}

/// A failure that ends the run.
#[derive(Debug)]
pub enum RunError {
    State(StateError),
    S3(S3Error),
    /// The SQS queue could not be used.
    Sqs(SqsError),
    /// stdout could not be written (closed early, disk full...).
    Output(io::Error),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::State(e) => e.fmt(f),
            RunError::S3(e) => e.fmt(f),
            RunError::Sqs(e) => e.fmt(f),
            RunError::Output(e) => write!(
                f,
                "cannot write to stdout ({e}); what was not written is printed again next run"
            ),
        }
    }
}

impl std::error::Error for RunError {}

impl RunError {
    /// The run's exit code (see `cli::exit`).
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::State(e) => e.exit_code(),
            RunError::S3(_) | RunError::Sqs(_) | RunError::Output(_) => crate::cli::exit::FAILED,
        }
    }
}

impl From<StateError> for RunError {
    fn from(e: StateError) -> Self {
        RunError::State(e)
    }
}

impl From<S3Error> for RunError {
    fn from(e: S3Error) -> Self {
        RunError::S3(e)
    }
}

impl From<SqsError> for RunError {
    fn from(e: SqsError) -> Self {
        RunError::Sqs(e)
    }
}

impl From<ListError> for RunError {
    fn from(e: ListError) -> Self {
        match e {
            ListError::S3(e) => RunError::S3(e),
            ListError::State(e) => RunError::State(e),
        }
    }
}

/// Runs the collector once, printing to the writer that `make_out` opens (stdout in real use):
/// the state first (a second run exits before touching S3), then the source the settings ask
/// for, which feeds the pipeline.
pub async fn run<W, F>(settings: &Settings, make_out: F) -> Result<Summary, RunError>
where
    W: Write,
    F: Fn() -> W + Clone + Send + 'static,
{
    let started = Instant::now();
    let state = State::open(
        &settings.state_path,
        &settings.bucket,
        &settings.prefix,
        settings.dry_run,
    )?;
    let bucket = Bucket::connect(&settings.bucket, &settings.connection).await;
    let mut summary = match &settings.sqs_queue_url {
        None => listing::collect(settings, bucket, state, make_out).await?,
        Some(queue_url) => sqs::collect(settings, queue_url, bucket, state, make_out).await?,
    };
    summary.elapsed = started.elapsed();
    Ok(summary)
}
