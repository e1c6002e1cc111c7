//! The pipeline every source feeds: fetch -> decode -> flatten -> print -> remember, for a
//! queue of objects that a source (`listing` for polling, `sqs` for notifications) found.
//!
//! Downloads and decoding run several objects at a time on the async runtime and its blocking
//! pool; printing and remembering run on one thread, in queue order, so that an object is
//! recorded in the state only after its lines reached stdout and were flushed. Each object's
//! end ([`Acked`]) goes back to the source, which acknowledges it its own way (nothing more
//! for polling; deleting or releasing the message for SQS) only once it was recorded. The
//! stages themselves live in their own modules; this one owns their order.

use std::future::Future;
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::stream::{self, StreamExt};
use time::Date;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

use crate::collect::{ObjectError, RunError, Settings, Summary, ERRORS_KEPT};
use crate::decode::{self, DecodeError, RecordReader};
use crate::digest::Hashing;
use crate::fetch::{self, FetchError};
use crate::flatten::{self, Shape};
use crate::output::Output;
use crate::s3::Bucket;
use crate::state::State;

/// A log file to print (from `resume_from` on), as a source found it.
#[derive(Debug, Clone)]
pub struct Pending {
    pub key: String,
    pub size: u64,
    pub date: Date,
    /// `YYYYMMDDTHHmmZ_RANDOM.json.gz`: with `date`, orders files across partitions by time.
    pub stamp: String,
    /// Records of this key that an earlier run already printed.
    pub resume_from: u64,
}

/// How one object of a queue ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acked {
    /// Every record printed, flushed and recorded as done.
    Done,
    /// The line budget stopped the run inside it; the records printed are recorded.
    StoppedInside,
    /// It could not be (fully) read; reported, retried later.
    Failed,
    /// The run stopped (budget, stdout) before it.
    NotReached,
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
/// and stops as soon as the printer does (`budget` lines printed, or stdout closed). Returns
/// what was printed and, for each object of `queue` in order, how it ended.
pub async fn print_queue<W, F>(
    settings: &Settings,
    bucket: &Bucket,
    state: Arc<State>,
    queue: Vec<Pending>,
    budget: u64,
    make_out: F,
) -> Result<(Summary, Vec<Acked>), RunError>
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
        let max_line_bytes = settings.max_line_bytes;
        let max_rate = settings.max_rate;
        let hash = settings.digests.is_some();
        std::thread::spawn(move || {
            let mut printer = Printer {
                out: Output::new(
                    io::BufWriter::with_capacity(1 << 16, make_out()),
                    budget,
                    max_rate,
                ),
                state: &state,
                bucket: &bucket,
                runtime,
                max_line_bytes,
                hash,
                summary: Summary::default(),
                queued,
                taken: 0,
                acked: vec![Acked::NotReached; queued as usize],
            };
            let result = printer.print_all(rx, &printer_backlog);
            result.map(|()| (printer.summary, printer.acked))
        })
    };

    let max_line_bytes = settings.max_line_bytes;
    let hash = settings.digests.is_some();
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
                let rendered = prefetch(&bucket, &pending, max_line_bytes, hash).await;
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

/// Objects up to this size (compressed) are rendered on the runtime's own thread, bigger ones
/// on the blocking pool. The hand-off to the pool and back costs wake-ups and context switches
/// that a small object's rendering does not pay for: on the benchmark's 100-record objects
/// (28 KiB of gzip on average, a few hundred microseconds to render), rendering them here took
/// 20% less wall time, 4% less CPU and 10 MiB less peak RSS than through the pool. 64 KiB of
/// CloudTrail gzip (1-2 MiB of JSON) renders in a few milliseconds, which holds up the other
/// downloads on that thread no longer than one slow response would (only a pathological
/// expansion would take longer, and it would delay them, not break them); larger objects
/// still go to the pool.
const RENDER_INLINE_LIMIT: usize = 64 * 1024;

/// Downloads `pending` and renders all its lines (hashing its content on the way when
/// `hash`).
async fn prefetch(
    bucket: &Bucket,
    pending: &Pending,
    max_line_bytes: usize,
    hash: bool,
) -> Result<Rendered, FetchError> {
    let data = fetch::download(bucket, &pending.key).await?;
    if data.len() <= RENDER_INLINE_LIMIT {
        return Ok(render_whole(
            data,
            hash,
            pending.resume_from,
            max_line_bytes,
            &pending.key,
        ));
    }
    let key = pending.key.clone();
    let resume_from = pending.resume_from;
    Ok(tokio::task::spawn_blocking(move || {
        render_whole(data, hash, resume_from, max_line_bytes, &key)
    })
    .await
    .expect("rendering an object cannot panic"))
}

/// Renders every line of a downloaded object (from record `resume_from` on) into memory.
fn render_whole(
    data: bytes::Bytes,
    hash: bool,
    resume_from: u64,
    max_line_bytes: usize,
    key: &str,
) -> Rendered {
    let mut rendered = Rendered::default();
    rendered.end = match decode::open(io::Cursor::new(data)) {
        Ok(reader) => render(
            reader,
            hash,
            resume_from,
            max_line_bytes,
            key,
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
    rendered
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
    /// The SHA-256 of the whole (uncompressed) content, when asked for and read to the end.
    sha256: Option<[u8; 32]>,
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
/// line and its record index to `sink`, which returns false to stop before that record. With
/// `hash`, an object read to its end also gets the SHA-256 of its content, which digest
/// verification compares with CloudTrail's (so a printed file is never downloaded twice).
fn render(
    reader: impl Read,
    hash: bool,
    resume_from: u64,
    max_line_bytes: usize,
    key: &str,
    sink: &mut LineSink<'_>,
) -> RenderEnd {
    let mut hashing = Hashing::new(reader, hash);
    let mut records = RecordReader::new(&mut hashing);
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
    drop(records);
    if hash && end.error.is_none() {
        end.sha256 = hashing.finish();
    }
    end
}

/// The print-and-remember stage: one thread, queue order.
struct Printer<'a, W: Write> {
    out: Output<W>,
    state: &'a State,
    bucket: &'a Bucket,
    runtime: Handle,
    max_line_bytes: usize,
    /// Hash each object's content for digest verification.
    hash: bool,
    summary: Summary,
    /// Objects in the queue, and how many of them the printer has taken so far.
    queued: u64,
    taken: u64,
    /// How each object of the queue ended, by position.
    acked: Vec<Acked>,
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
                // Not reached: the source gives it back as it is.
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
                self.hash,
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
            self.ack(Acked::StoppedInside);
            if end.records_read > pending.resume_from {
                self.state
                    .mark_printed_up_to(&pending.key, end.records_read)?;
            }
            return Ok(());
        }
        match end.error {
            None => {
                self.state.mark_done(&pending.key, end.sha256.as_ref())?;
                self.ack(Acked::Done);
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

    /// How the object the printer holds (the last one taken) ended.
    fn ack(&mut self, how: Acked) {
        if let Some(slot) = self.acked.get_mut(self.taken as usize - 1) {
            *slot = how;
        }
    }

    fn fail(&mut self, pending: &Pending, reason: &str) {
        self.ack(Acked::Failed);
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

/// A spawned task that is cancelled when its handle is dropped, so a run that stops early
/// does not keep downloading.
pub struct AbortOnDrop<T>(pub JoinHandle<T>);

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
