//! One run of the collector, stage by stage: list -> fetch -> decode -> flatten -> print ->
//! remember.
//!
//! Downloads and decoding run several objects at a time on the async runtime and its blocking
//! pool; printing and remembering run on one thread, in queue order, so that an object is
//! recorded in the state only after its lines reached stdout and were flushed. The stages
//! themselves live in their own modules; this one owns their order and the run's accounting.

use std::fmt;
use std::future::Future;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration as StdDuration, Instant};

use futures::stream::{self, StreamExt};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use time::Date;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

use crate::decode::{self, DecodeError, RecordReader};
use crate::fetch::{self, FetchError};
use crate::flatten::{self, Shape};
use crate::layout::Partition;
use crate::listing::{self, Filters, ListError, Pending};
use crate::output::Output;
use crate::s3::{Bucket, Connection, S3Error, S3ErrorKind};
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
        Ok(())
    }
}

/// A failure that ends the run.
#[derive(Debug)]
pub enum RunError {
    State(StateError),
    S3(S3Error),
    /// stdout could not be written (closed early, disk full...).
    Output(io::Error),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::State(e) => e.fmt(f),
            RunError::S3(e) => e.fmt(f),
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
            RunError::S3(_) | RunError::Output(_) => crate::cli::exit::FAILED,
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

impl From<ListError> for RunError {
    fn from(e: ListError) -> Self {
        match e {
            ListError::S3(e) => RunError::S3(e),
            ListError::State(e) => RunError::State(e),
        }
    }
}

/// Runs the collector once, printing to the writer that `make_out` opens (stdout in real use).
pub async fn run<W, F>(settings: &Settings, make_out: F) -> Result<Summary, RunError>
where
    W: Write,
    F: FnOnce() -> W + Send + 'static,
{
    let started = Instant::now();
    // The state first: a second run exits before touching S3.
    let state = State::open(
        &settings.state_path,
        &settings.bucket,
        &settings.prefix,
        settings.dry_run,
    )?;
    let mut bucket = Bucket::connect(&settings.bucket, &settings.connection).await;
    let partitions = match listing::discover(&bucket, &settings.prefix, &settings.filters).await {
        Err(S3Error {
            kind: S3ErrorKind::WrongRegion(Some(region)),
            ..
        // Followed with --endpoint-url too: S3-compatible stores and proxies answer the same
        // redirect, and the region they name is the one to sign for.
        }) if settings.connection.region.is_none() => {
            tracing::warn!(
                "bucket {} is in {region}, not {}: following it (pass --region {region} to save this detour)",
                settings.bucket,
                bucket.region()
            );
            bucket = bucket.in_region(&region);
            listing::discover(&bucket, &settings.prefix, &settings.filters).await?
        }
        other => other?,
    };
    let mut no_logs = None;
    if partitions.is_empty() {
        let found = listing::what_is_under(&bucket, &settings.prefix).await?;
        let message = format!(
            "no CloudTrail logs under s3://{}/{}AWSLogs/ (check --bucket, --prefix and the filters); {}",
            settings.bucket,
            settings.prefix,
            if found.is_empty() {
                format!("s3://{}/{} is empty", settings.bucket, settings.prefix)
            } else {
                format!("it holds: {}", found.join(", "))
            }
        );
        tracing::warn!("{message}");
        no_logs = Some(message);
    }
    let starts = partitions
        .iter()
        .map(|p| {
            listing::start_date(
                &state,
                p,
                settings.only_logs_after,
                settings.default_start,
                settings.lookback_days,
            )
        })
        .collect::<Result<Vec<Date>, _>>()?;
    let queue = listing::queue(&bucket, &state, &partitions, &starts).await?;
    crate::progress::start(queue.len() as u64);
    tracing::info!(
        "{} partitions, {} objects to print",
        partitions.len(),
        queue.len()
    );

    let state = Arc::new(state);
    let mut summary = print_queue(settings, &bucket, state.clone(), queue, make_out).await?;
    summary.partitions = partitions.len();
    summary.no_logs = no_logs;
    if !settings.dry_run {
        summary.pruned = prune(&state, &partitions, settings.lookback_days)?;
        tracing::debug!(
            "state: forgot {} keys older than the look-back window",
            summary.pruned
        );
    }
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// One object on its way to the printer, in queue order.
struct Fetched {
    pending: Pending,
    body: Body,
    /// Bytes it counts for in the [`Backlog`], given back once it is printed.
    weight: u64,
}

/// Rendered lines waiting to be printed, in bytes, with the objects still downloading counted
/// at an estimate. New downloads start only while it is under [`BACKLOG_LIMIT`]: memory stays
/// flat however many (or however large) the objects are. Only starting waits, never finishing,
/// and objects start in queue order, so the printer always has the oldest one coming.
struct Backlog {
    bytes: AtomicU64,
    /// The largest ratio of line bytes to compressed bytes seen in this run.
    expansion: AtomicU64,
    printed: Notify,
}

const BACKLOG_LIMIT: u64 = 16 * 1024 * 1024;
/// Lines take about this many times the compressed size of their object, until the run has
/// seen better (CloudTrail objects typically expand 10 to 20 times).
const FIRST_EXPANSION_ESTIMATE: u64 = 20;

impl Backlog {
    fn new() -> Backlog {
        Backlog {
            bytes: AtomicU64::new(0),
            expansion: AtomicU64::new(FIRST_EXPANSION_ESTIMATE),
            printed: Notify::new(),
        }
    }

    /// Waits until there is room for an object of `compressed` bytes, then counts it in.
    /// Returns the estimate it was counted at.
    async fn admit(&self, compressed: u64) -> u64 {
        loop {
            let printed = self.printed.notified();
            if self.bytes.load(Ordering::SeqCst) < BACKLOG_LIMIT {
                let estimate = compressed * self.expansion.load(Ordering::SeqCst);
                self.bytes.fetch_add(estimate, Ordering::SeqCst);
                return estimate;
            }
            printed.await;
        }
    }

    /// Replaces an estimate by what the object really takes, and learns from it.
    fn correct(&self, compressed: u64, estimate: u64, actual: u64) {
        if compressed > 0 {
            self.expansion
                .fetch_max(actual.div_ceil(compressed), Ordering::SeqCst);
        }
        self.bytes.fetch_add(actual, Ordering::SeqCst);
        self.bytes.fetch_sub(estimate, Ordering::SeqCst);
    }

    fn release(&self, bytes: u64) {
        self.bytes.fetch_sub(bytes, Ordering::SeqCst);
        self.printed.notify_one();
    }
}

enum Body {
    /// Downloaded and rendered to lines in advance.
    Rendered(Result<Rendered, FetchError>),
    /// Too large to hold: the printer streams it itself.
    Deferred,
}

/// Fetches and renders several objects at once, hands them to the printer thread in order,
/// and stops as soon as the printer does (budget reached or stdout closed).
async fn print_queue<W, F>(
    settings: &Settings,
    bucket: &Bucket,
    state: Arc<State>,
    queue: Vec<Pending>,
    make_out: F,
) -> Result<Summary, RunError>
where
    W: Write,
    F: FnOnce() -> W + Send + 'static,
{
    let queued = queue.len() as u64;
    let (tx, rx) = mpsc::channel::<Fetched>(1);
    let backlog = Arc::new(Backlog::new());
    let printer_backlog = backlog.clone();
    let printer = {
        let runtime = Handle::current();
        let bucket = bucket.clone();
        let max_lines = settings.max_lines;
        let max_line_bytes = settings.max_line_bytes;
        let max_rate = settings.max_rate;
        std::thread::spawn(move || {
            let mut printer = Printer {
                out: Output::new(
                    io::BufWriter::with_capacity(1 << 16, make_out()),
                    max_lines,
                    max_rate,
                ),
                state: &state,
                bucket: &bucket,
                runtime,
                max_line_bytes,
                summary: Summary::default(),
                queued,
                taken: 0,
            };
            let result = printer.print_all(rx, &printer_backlog);
            result.map(|()| printer.summary)
        })
    };

    let max_line_bytes = settings.max_line_bytes;
    let fetched = stream::iter(queue)
        .then(|pending| {
            let backlog = backlog.clone();
            async move {
                // No estimate: too large to hold, the printer streams it.
                let estimate = if pending.size > fetch::WHOLE_OBJECT_LIMIT {
                    None
                } else {
                    Some(backlog.admit(pending.size).await)
                };
                (pending, estimate)
            }
        })
        .map(|(pending, estimate)| {
            let bucket = bucket.clone();
            let backlog = backlog.clone();
            AbortOnDrop(tokio::spawn(async move {
                let Some(estimate) = estimate else {
                    return Fetched {
                        pending,
                        body: Body::Deferred,
                        weight: 0,
                    };
                };
                let rendered = prefetch(&bucket, &pending, max_line_bytes).await;
                let weight = rendered.as_ref().map_or(0, |r| r.lines.len() as u64);
                backlog.correct(pending.size, estimate, weight);
                Fetched {
                    pending,
                    body: Body::Rendered(rendered),
                    weight,
                }
            }))
        })
        .buffered(settings.concurrency);
    let mut fetched = Box::pin(fetched);
    while let Some(item) = fetched.next().await {
        let item = item.expect("a fetch task panicked");
        if tx.send(item).await.is_err() {
            break; // The printer stopped: budget reached or stdout closed.
        }
    }
    drop(fetched);
    drop(tx);
    tokio::task::spawn_blocking(move || printer.join())
        .await
        .expect("joining the printer cannot fail")
        .expect("the printer thread panicked")
}

/// Downloads `pending` and renders all its lines on the blocking pool.
async fn prefetch(
    bucket: &Bucket,
    pending: &Pending,
    max_line_bytes: usize,
) -> Result<Rendered, FetchError> {
    let data = fetch::download(bucket, &pending.key).await?;
    let key = pending.key.clone();
    let resume_from = pending.resume_from;
    Ok(tokio::task::spawn_blocking(move || {
        let mut rendered = Rendered::default();
        let reader = decode::open(io::Cursor::new(data));
        let end = match reader {
            Ok(reader) => render(
                reader,
                resume_from,
                max_line_bytes,
                &key,
                &mut |line, index, shape| {
                    rendered.lines.extend_from_slice(line);
                    rendered.lines.push(b'\n');
                    rendered.line_info.push(LineInfo {
                        record: index,
                        trimmed: shape == Shape::Trimmed,
                    });
                    Ok(true)
                },
            ),
            Err(e) => RenderEnd::failed(e),
        };
        rendered.end = end;
        rendered
    })
    .await
    .expect("rendering an object cannot panic"))
}

/// What a rendered line came from.
struct LineInfo {
    /// The index of its record in the object (invalid records have no line).
    record: u64,
    trimmed: bool,
}

/// The lines of one object, rendered ahead of their turn.
#[derive(Default)]
struct Rendered {
    lines: Vec<u8>,
    /// One entry per line, in order.
    line_info: Vec<LineInfo>,
    end: RenderEnd,
}

/// How rendering an object ended.
#[derive(Debug, Default)]
struct RenderEnd {
    /// Records read from the start of the object (the resume point after this run).
    records_read: u64,
    /// Lines accepted by the sink that had to be trimmed.
    trimmed: u64,
    bad_records: u64,
    /// Why the first invalid record was skipped.
    first_bad_record: Option<String>,
    /// The sink asked to stop before the record with index `records_read`.
    stopped: bool,
    /// Reading broke off (the records before it were handed to the sink).
    error: Option<DecodeError>,
    /// The sink failed to write.
    write_error: Option<io::Error>,
}

impl RenderEnd {
    fn failed(source: io::Error) -> RenderEnd {
        RenderEnd {
            error: Some(DecodeError::Read { records: 0, source }),
            ..RenderEnd::default()
        }
    }
}

/// Takes each line of an object with its record index and shape; false stops before it.
type LineSink<'a> = dyn FnMut(&[u8], u64, Shape) -> io::Result<bool> + 'a;

/// Decodes and flattens the records of one object from record `resume_from` on, handing each
/// line and its record index to `sink`, which returns false to stop before that record.
fn render(
    reader: impl Read,
    resume_from: u64,
    max_line_bytes: usize,
    key: &str,
    sink: &mut LineSink<'_>,
) -> RenderEnd {
    let mut records = RecordReader::new(reader);
    let mut end = RenderEnd::default();
    let mut line = Vec::with_capacity(max_line_bytes);
    loop {
        let index = records.records();
        let record = match records.next_record() {
            Ok(Some(record)) => record,
            Ok(None) => break,
            Err(e) => {
                end.error = Some(e);
                break;
            }
        };
        if index < resume_from {
            continue;
        }
        line.clear();
        match flatten::flatten(record, max_line_bytes, &mut line) {
            Ok(shape) => {
                match sink(&line, index, shape) {
                    Ok(true) => {}
                    Ok(false) => {
                        end.stopped = true;
                        end.records_read = index;
                        return end;
                    }
                    Err(e) => {
                        end.write_error = Some(e);
                        end.records_read = index;
                        return end;
                    }
                }
                if shape == Shape::Trimmed {
                    end.trimmed += 1;
                }
            }
            Err(e) => {
                let reason = format!("record {} skipped: {e}", index + 1);
                tracing::error!("{key}: {reason}");
                end.bad_records += 1;
                end.first_bad_record.get_or_insert(reason);
            }
        }
    }
    end.records_read = records.records();
    end
}

/// The print-and-remember stage: one thread, queue order.
struct Printer<'a, W: Write> {
    out: Output<W>,
    state: &'a State,
    bucket: &'a Bucket,
    runtime: Handle,
    max_line_bytes: usize,
    summary: Summary,
    /// Objects in the queue, and how many of them the printer has taken so far.
    queued: u64,
    taken: u64,
}

impl<W: Write> Printer<'_, W> {
    fn print_all(
        &mut self,
        mut rx: mpsc::Receiver<Fetched>,
        backlog: &Backlog,
    ) -> Result<(), RunError> {
        while let Some(item) = rx.blocking_recv() {
            self.taken += 1;
            if self.out.remaining() == 0 {
                self.left_for_next_run(&item.pending);
                break;
            }
            match item.body {
                Body::Rendered(Ok(rendered)) => self.print_rendered(&item.pending, rendered)?,
                Body::Rendered(Err(e)) => self.fail(&item.pending, &e.to_string()),
                Body::Deferred => self.print_streamed(&item.pending)?,
            }
            backlog.release(item.weight);
        }
        Ok(())
    }

    fn print_rendered(&mut self, pending: &Pending, rendered: Rendered) -> Result<(), RunError> {
        let lines = &rendered.line_info;
        let written = self
            .out
            .write_lines(&rendered.lines, lines.len() as u64)
            .map_err(RunError::Output)? as usize;
        let mut end = rendered.end;
        end.trimmed = lines[..written].iter().filter(|l| l.trimmed).count() as u64;
        if let Some(first_unwritten) = lines.get(written) {
            end.stopped = true;
            end.records_read = first_unwritten.record;
        }
        self.remember(pending, end)
    }

    fn print_streamed(&mut self, pending: &Pending) -> Result<(), RunError> {
        tracing::info!(
            "{}: {} MB, streaming it",
            pending.key,
            pending.size / 1_000_000
        );
        let body = match fetch::open_stream(&self.runtime, self.bucket, &pending.key) {
            Ok(body) => body,
            Err(e) => {
                self.fail(pending, &e.to_string());
                return Ok(());
            }
        };
        let out = &mut self.out;
        let end = match decode::open(body) {
            Ok(reader) => render(
                reader,
                pending.resume_from,
                self.max_line_bytes,
                &pending.key,
                &mut |line, _, _| {
                    if out.remaining() == 0 {
                        return Ok(false);
                    }
                    out.write_line(line)?;
                    Ok(true)
                },
            ),
            Err(e) => RenderEnd::failed(e),
        };
        if let Some(e) = end.write_error {
            return Err(RunError::Output(e));
        }
        self.out.flush().map_err(RunError::Output)?;
        self.remember(pending, end)
    }

    /// Records what reached stdout (already flushed) and reports what did not.
    fn remember(&mut self, pending: &Pending, end: RenderEnd) -> Result<(), RunError> {
        self.summary.lines = self.out.written();
        self.summary.trimmed += end.trimmed;
        self.summary.bad_records += end.bad_records;
        if let Some(reason) = &end.first_bad_record {
            if self.summary.errors.len() < ERRORS_KEPT {
                self.summary.errors.push(ObjectError {
                    key: format!("s3://{}/{}", self.bucket.name(), pending.key),
                    reason: reason.clone(),
                });
            }
        }
        if end.stopped {
            self.left_for_next_run(pending);
            if end.records_read > pending.resume_from {
                self.state
                    .mark_printed_up_to(&pending.key, end.records_read)?;
            }
            return Ok(());
        }
        match end.error {
            None => {
                self.state.mark_done(&pending.key)?;
                self.summary.objects_done += 1;
                crate::progress::object_printed(self.summary.lines);
                tracing::debug!("{}: done", pending.key);
            }
            Some(error) => {
                if end.records_read > pending.resume_from {
                    self.state
                        .mark_printed_up_to(&pending.key, end.records_read)?;
                }
                self.fail(pending, &error.to_string());
            }
        }
        Ok(())
    }

    /// The budget stopped the run at `pending`: it and every object after it wait for the
    /// next run. Objects come in delivery order, so `pending` is the oldest of them.
    fn left_for_next_run(&mut self, pending: &Pending) {
        if !self.summary.budget_reached {
            self.summary.budget_reached = true;
            self.summary.pending_objects = self.queued - self.taken + 1;
            self.summary.oldest_pending = Some(pending.stamp.clone());
        }
    }

    fn fail(&mut self, pending: &Pending, reason: &str) {
        self.summary.failed_objects += 1;
        let object = format!("s3://{}/{}", self.bucket.name(), pending.key);
        tracing::error!("{object}: {reason}; it is retried next run");
        if self.summary.errors.len() < ERRORS_KEPT {
            self.summary.errors.push(ObjectError {
                key: object,
                reason: reason.to_owned(),
            });
        }
    }
}

/// Forgets done keys that fell out of every partition's look-back window.
pub fn prune(
    state: &State,
    partitions: &[Partition],
    lookback_days: u32,
) -> Result<usize, StateError> {
    let mut pruned = 0;
    for partition in partitions {
        if let Some(start) = listing::window_start(state, partition, lookback_days)? {
            pruned += state.prune(&partition.prefix, &partition.day_folder(start))?;
        }
    }
    Ok(pruned)
}

/// A spawned task that is cancelled when its handle is dropped, so a run that stops early
/// does not keep downloading.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
