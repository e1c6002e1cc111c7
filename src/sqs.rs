//! The SQS source, beside `listing`: instead of listing the bucket, a run receives the
//! notifications that S3 (or CloudTrail, through SNS, or EventBridge) sends to a queue when a
//! log file is delivered, and feeds those objects to the same `pipeline`. Any number of
//! agents can share one queue: SQS gives each message to one of them at a time.
//!
//! What a message may be (see [`objects_in`]): an S3 event notification (keys URL-encoded;
//! `s3:TestEvent` is acknowledged and ignored), the same inside an SNS envelope (or delivered
//! raw), an EventBridge "Object Created" event, or CloudTrail's own SNS notification
//! (`s3Bucket`, `s3ObjectKey`: several keys at once). Keys that are not CloudTrail log files
//! (digests, Insights, folders) and keys already printed are acknowledged and skipped.
//!
//! A message is deleted only after every record of every object it names was written to
//! stdout, flushed and recorded in the state. While its objects are read, its visibility is
//! extended, so that no other reader takes it. A message whose object cannot be read is left
//! alone: it comes back after the visibility timeout and, after the queue's maxReceiveCount,
//! goes to its dead-letter queue; this never deletes it by itself. The line budget holds:
//! objects it cuts or does not reach are given back at once (visibility 0), and the state
//! keeps where inside an object to go on.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use aws_config::Region;
use aws_sdk_sqs::error::SdkError;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    MessageSystemAttributeName,
};
use aws_sdk_sqs::Client;
use serde_json::Value;

use crate::collect::{ObjectError, RunError, Settings, Summary, ERRORS_KEPT};
use crate::layout::{self, Partition};
use crate::listing;
use crate::pipeline::{self, AbortOnDrop, Acked, Pending};
use crate::s3::{self, Bucket};
use crate::state::State;

/// How long a receive waits for a message when the queue is empty: long polling, but short,
/// so that an idle run stays quick and costs one request.
const WAIT_SECONDS: i32 = 2;
/// How long a received message stays hidden from other readers, renewed while its objects
/// are being read.
const VISIBILITY_SECONDS: i32 = 120;
/// How often the visibility of messages in flight is renewed.
const HEARTBEAT: Duration = Duration::from_secs(40);
/// SQS's own limit per receive, delete or visibility batch.
const BATCH: usize = 10;

/// Why the queue could not be used. Each message says what to do.
#[derive(Debug)]
pub struct SqsError {
    pub kind: SqsErrorKind,
    pub queue_url: String,
    detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqsErrorKind {
    NoSuchQueue,
    AccessDenied,
    BadCredentials,
    NoCredentials,
    /// STS refused to let the chain's credentials assume `--role-arn`.
    AssumeRoleDenied,
    Unreachable,
    Other,
}

impl SqsError {
    fn from_sdk<E, R>(err: &SdkError<E, R>, queue_url: &str, role: Option<&s3::Role>) -> SqsError
    where
        E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error + 'static,
        R: fmt::Debug,
        SdkError<E, R>: std::error::Error + 'static,
    {
        if let Some(denied) = role.and_then(|role| s3::role_denied_text(err, role)) {
            return SqsError {
                kind: SqsErrorKind::AssumeRoleDenied,
                queue_url: queue_url.to_owned(),
                detail: denied,
            };
        }
        let detail = match err {
            SdkError::ServiceError(service) => format!(
                "{}: {}",
                service.err().code().unwrap_or("(no code)"),
                service.err().message().unwrap_or("(no message)")
            ),
            other => s3::error_chain(other),
        };
        let kind = match err {
            SdkError::ServiceError(service) => match service.err().code().unwrap_or_default() {
                "AWS.SimpleQueueService.NonExistentQueue" | "QueueDoesNotExist" => {
                    SqsErrorKind::NoSuchQueue
                }
                "AccessDenied" | "AccessDeniedException" | "KMS.AccessDeniedException" => {
                    SqsErrorKind::AccessDenied
                }
                "InvalidClientTokenId"
                | "SignatureDoesNotMatch"
                | "ExpiredToken"
                | "UnrecognizedClientException"
                | "InvalidSecurity" => SqsErrorKind::BadCredentials,
                _ => SqsErrorKind::Other,
            },
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => SqsErrorKind::Unreachable,
            _ if detail.contains("no credentials") || detail.contains("credential provider") => {
                SqsErrorKind::NoCredentials
            }
            _ => SqsErrorKind::Other,
        };
        SqsError {
            kind,
            queue_url: queue_url.to_owned(),
            detail,
        }
    }
}

impl fmt::Display for SqsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let q = &self.queue_url;
        match self.kind {
            SqsErrorKind::NoSuchQueue => write!(
                f,
                "the SQS queue {q} does not exist (check --sqs-queue-url, and --region or the \
                 URL's region)"
            ),
            SqsErrorKind::AccessDenied => write!(
                f,
                "access denied on the SQS queue {q}: the credentials need sqs:ReceiveMessage, \
                 sqs:DeleteMessage, sqs:ChangeMessageVisibility and sqs:GetQueueAttributes on \
                 it (and kms:Decrypt if the queue is encrypted with a KMS key)"
            ),
            SqsErrorKind::BadCredentials => write!(
                f,
                "SQS refused the credentials for {q} (unknown, expired or mistyped key): check \
                 the profile or environment the agent runs with"
            ),
            SqsErrorKind::NoCredentials => write!(
                f,
                "no AWS credentials found for the SQS queue {q}: set AWS_PROFILE or --profile, \
                 AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where an instance or \
                 container role is available"
            ),
            SqsErrorKind::Unreachable => write!(
                f,
                "cannot reach SQS for {q} (network, proxy or --endpoint-url)"
            ),
            // The detail is the whole explanation (see `s3::role_denied_text`).
            SqsErrorKind::AssumeRoleDenied => return f.write_str(&self.detail),
            SqsErrorKind::Other => write!(f, "the SQS call on {q} failed"),
        }?;
        write!(f, " [{}]", self.detail)
    }
}

impl std::error::Error for SqsError {}

/// A queue and the client that reaches it.
pub struct Queue {
    client: Client,
    url: String,
    role: Option<s3::Role>,
}

impl Queue {
    /// A client for `url` with the bucket's credentials, endpoint, retries and timeouts, in
    /// the region the URL names (`https://sqs.REGION.amazonaws.com/ACCOUNT/NAME`) when it
    /// names one: the queue may be in another region, and another account, than the bucket.
    pub fn new(url: &str, bucket: &Bucket) -> Queue {
        let mut config = aws_sdk_sqs::config::Builder::from(bucket.shared());
        if let Some(region) = region_of(url) {
            config = config.region(Region::new(region));
        } else if bucket.shared().region().is_none() {
            config = config.region(Region::from_static(s3::FALLBACK_REGION));
        }
        Queue {
            client: Client::from_conf(config.build()),
            url: url.to_owned(),
            role: bucket.role().cloned(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn err<E, R>(&self, e: &SdkError<E, R>) -> SqsError
    where
        E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error + 'static,
        R: fmt::Debug,
        SdkError<E, R>: std::error::Error + 'static,
    {
        SqsError::from_sdk(e, &self.url, self.role.as_ref())
    }

    /// Up to 10 messages; waits up to `wait` seconds when there are none.
    pub async fn receive(&self, wait: i32) -> Result<Vec<Message>, SqsError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(BATCH as i32)
            .wait_time_seconds(wait)
            .visibility_timeout(VISIBILITY_SECONDS)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| self.err(&e))?;
        Ok(out.messages.unwrap_or_default())
    }

    /// Deletes messages, 10 at a time. Returns how many SQS refused (reported, not fatal:
    /// such a message comes back and is skipped as already printed).
    pub async fn delete(&self, receipts: &[String]) -> Result<usize, SqsError> {
        let mut refused = 0;
        for chunk in receipts.chunks(BATCH) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, receipt)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(receipt)
                        .build()
                        .expect("id and receipt handle are set")
                })
                .collect();
            let out = self
                .client
                .delete_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| self.err(&e))?;
            for failed in out.failed {
                refused += 1;
                tracing::warn!(
                    "SQS did not delete a message of {}: {} {}",
                    self.url,
                    failed.code,
                    failed.message.unwrap_or_default()
                );
            }
        }
        Ok(refused)
    }

    /// Sets how long more the messages stay hidden (0: visible again at once).
    pub async fn set_visibility(&self, receipts: &[String], seconds: i32) -> Result<(), SqsError> {
        for chunk in receipts.chunks(BATCH) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, receipt)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(receipt)
                        .visibility_timeout(seconds)
                        .build()
                        .expect("id and receipt handle are set")
                })
                .collect();
            self.client
                .change_message_visibility_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| self.err(&e))?;
        }
        Ok(())
    }

    /// The queue's attributes (VisibilityTimeout, RedrivePolicy, ...), for `check`.
    pub async fn attributes(&self) -> Result<HashMap<String, String>, SqsError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await
            .map_err(|e| self.err(&e))?;
        Ok(out
            .attributes
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k.as_str().to_owned(), v))
            .collect())
    }

    /// Whether the credentials may delete messages, without deleting any: SQS checks the
    /// permission before the receipt handle, so a made-up handle tells them apart.
    pub async fn may_delete(&self) -> Result<bool, SqsError> {
        match self
            .client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle("ossec-cloudtrail-check")
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => {
                let err = self.err(&e);
                match err.kind {
                    SqsErrorKind::AccessDenied => Ok(false),
                    SqsErrorKind::Other => Ok(true),
                    _ => Err(err),
                }
            }
        }
    }

    /// For `check`: whether the credentials may receive messages and change their visibility,
    /// taking none. Receives at most one message without waiting and makes it visible again
    /// at once (the receive still counts towards the queue's maxReceiveCount); with no
    /// message, changes the visibility of a made-up receipt handle, as `may_delete` does.
    pub async fn peek(&self) -> Result<Peek, SqsError> {
        let received = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(1)
            .wait_time_seconds(0)
            // Back by itself soon, should giving it back be refused.
            .visibility_timeout(10)
            .send()
            .await;
        let (may_receive, message) = match received {
            Ok(out) => (true, out.messages.unwrap_or_default().into_iter().next()),
            Err(e) => match self.err(&e) {
                err if err.kind == SqsErrorKind::AccessDenied => (false, None),
                err => return Err(err),
            },
        };
        let receipt = message.as_ref().and_then(|m| m.receipt_handle());
        let given_back = self
            .client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt.unwrap_or("ossec-cloudtrail-check"))
            .visibility_timeout(0)
            .send()
            .await;
        let may_change_visibility = match given_back {
            Ok(_) => true,
            Err(e) => match self.err(&e) {
                err if err.kind == SqsErrorKind::AccessDenied => false,
                err if err.kind == SqsErrorKind::Other => true,
                err => return Err(err),
            },
        };
        Ok(Peek {
            may_receive,
            may_change_visibility,
            body: message.and_then(|m| m.body),
        })
    }
}

/// What [`Queue::peek`] found.
#[derive(Debug)]
pub struct Peek {
    pub may_receive: bool,
    pub may_change_visibility: bool,
    /// The body of the message received, if one was waiting.
    pub body: Option<String>,
}

/// The region in an AWS queue URL, if it is one.
fn region_of(url: &str) -> Option<String> {
    let host = url.split("://").nth(1)?.split('/').next()?;
    let rest = host.strip_prefix("sqs.")?;
    let region = rest.split('.').next()?;
    layout::is_region(region).then(|| region.to_owned())
}

/// An object a notification names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notified {
    pub bucket: String,
    pub key: String,
    pub size: Option<u64>,
}

/// The objects a message body names, whatever its shape; an empty list for S3's test event.
/// An error says why the body is none of the shapes we know.
pub fn objects_in(body: &str) -> Result<Vec<Notified>, String> {
    let value: Value =
        serde_json::from_str(body).map_err(|e| format!("the message is not JSON ({e})"))?;
    objects_in_value(&value, 0)
}

fn objects_in_value(value: &Value, depth: u32) -> Result<Vec<Notified>, String> {
    let text = |v: &Value| v.as_str().map(str::to_owned);
    // An SNS envelope: the notification is its Message, a JSON text.
    if let (Some("Notification"), Some(message)) =
        (value["Type"].as_str(), value["Message"].as_str())
    {
        if depth > 2 {
            return Err("SNS envelopes nested too deep".to_owned());
        }
        let inner: Value = serde_json::from_str(message)
            .map_err(|e| format!("the SNS message is not JSON ({e})"))?;
        return objects_in_value(&inner, depth + 1);
    }
    if value["Event"] == "s3:TestEvent" {
        return Ok(Vec::new());
    }
    // S3 event notifications: keys are URL-encoded (a space as '+').
    if let Some(records) = value["Records"].as_array() {
        let mut objects = Vec::new();
        for record in records {
            let s3 = &record["s3"];
            let (Some(bucket), Some(key)) =
                (text(&s3["bucket"]["name"]), text(&s3["object"]["key"]))
            else {
                return Err("an S3 event record without s3.bucket.name or s3.object.key".to_owned());
            };
            let name = record["eventName"].as_str().unwrap_or("");
            if !name.is_empty() && !name.starts_with("ObjectCreated") {
                continue;
            }
            objects.push(Notified {
                bucket,
                key: url_decode(&key)?,
                size: s3["object"]["size"].as_u64(),
            });
        }
        return Ok(objects);
    }
    // EventBridge "Object Created", delivered to SQS: keys as they are.
    if value["source"] == "aws.s3" {
        if value["detail-type"] != "Object Created" {
            return Ok(Vec::new());
        }
        let detail = &value["detail"];
        let (Some(bucket), Some(key)) = (
            text(&detail["bucket"]["name"]),
            text(&detail["object"]["key"]),
        ) else {
            return Err(
                "an EventBridge event without detail.bucket.name or detail.object.key".to_owned(),
            );
        };
        return Ok(vec![Notified {
            bucket,
            key,
            size: detail["object"]["size"].as_u64(),
        }]);
    }
    // CloudTrail's own notification, through SNS: several keys, as they are.
    if let (Some(bucket), Some(keys)) = (text(&value["s3Bucket"]), value["s3ObjectKey"].as_array())
    {
        return keys
            .iter()
            .map(|k| {
                Ok(Notified {
                    bucket: bucket.clone(),
                    key: text(k).ok_or("s3ObjectKey holds a value that is not a key")?,
                    size: None,
                })
            })
            .collect();
    }
    Err("not an S3, SNS, EventBridge or CloudTrail notification".to_owned())
}

/// Decodes an S3 event key: `%XX` escapes and `+` for a space.
fn url_decode(key: &str) -> Result<String, String> {
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = key
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("a bad escape in the key {key:?}"))?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| format!("the key {key:?} is not UTF-8 once decoded"))
}

/// What became of one message of a batch.
struct Tracked {
    receipt: String,
    /// Positions of its objects in the batch's queue.
    objects: Vec<usize>,
    /// It cannot be acknowledged: not understood, or naming another bucket.
    keep: bool,
}

/// The SQS run: receives batches of messages until the queue is empty or the line budget is
/// spent, prints their objects through the pipeline, then deletes the messages whose objects
/// are all printed and gives back those the budget did not finish.
pub async fn collect<W, F>(
    settings: &Settings,
    queue_url: &str,
    bucket: Bucket,
    state: State,
    make_out: F,
) -> Result<Summary, RunError>
where
    W: Write,
    F: Fn() -> W + Clone + Send + 'static,
{
    let queue = Arc::new(Queue::new(queue_url, &bucket));
    let state = Arc::new(state);
    let mut summary = Summary::default();
    let mut partitions: BTreeSet<Partition> = BTreeSet::new();
    let mut first = true;
    let mut held: Vec<String> = Vec::new();
    loop {
        let budget = settings.max_lines.saturating_sub(summary.lines);
        if budget == 0 {
            // Behind only if the queue still holds messages.
            let waiting = queue
                .attributes()
                .await
                .ok()
                .and_then(|a| a.get("ApproximateNumberOfMessages")?.parse::<u64>().ok())
                .unwrap_or(0);
            if waiting > 0 {
                summary.budget_reached = true;
                summary.pending_objects = waiting;
            }
            break;
        }
        let messages = receive_batch(&queue, settings.concurrency, first).await?;
        first = false;
        if messages.is_empty() {
            break;
        }
        let (tracked, pending, seen) =
            sort_out(settings, &bucket, &state, &messages, &mut summary).await?;
        partitions.extend(seen);

        // Keep the messages hidden while their objects are read.
        let receipts: Vec<String> = tracked.iter().map(|t| t.receipt.clone()).collect();
        let heartbeat = {
            let queue = queue.clone();
            let receipts = receipts.clone();
            AbortOnDrop(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(HEARTBEAT).await;
                    if let Err(e) = queue.set_visibility(&receipts, VISIBILITY_SECONDS).await {
                        tracing::warn!("cannot extend the visibility of messages in flight: {e}");
                    }
                }
            }))
        };
        let printed = pipeline::print_queue(
            settings,
            &bucket,
            state.clone(),
            pending,
            budget,
            make_out.clone(),
        )
        .await;
        drop(heartbeat);
        let (batch, acked) = match printed {
            Ok(done) => done,
            Err(e) => {
                // stdout or the state failed: give every message back for the next run.
                let _ = queue.set_visibility(&receipts, 0).await;
                return Err(e);
            }
        };
        let budget_reached = batch.budget_reached;
        summary.absorb(batch);
        acknowledge(settings, &queue, &tracked, &acked, &mut held).await?;
        if budget_reached {
            break;
        }
    }
    queue.set_visibility(&held, 0).await?;
    summary.partitions = partitions.len();
    if !settings.dry_run {
        let partitions: Vec<Partition> = partitions.into_iter().collect();
        summary.pruned = listing::prune(&state, &partitions, settings.lookback_days)?;
    }
    Ok(summary)
}

/// Up to `want` messages (at least one receive of 10): the first receive of a run waits a
/// little for messages, the next ones take only what is there.
async fn receive_batch(queue: &Queue, want: usize, first: bool) -> Result<Vec<Message>, SqsError> {
    let mut messages = Vec::new();
    let mut wait = if first { WAIT_SECONDS } else { 0 };
    loop {
        let got = queue.receive(wait).await?;
        let full = got.len() == BATCH;
        messages.extend(got);
        if !full || messages.len() >= want {
            return Ok(messages);
        }
        wait = 0;
    }
}

/// Turns a batch of messages into the objects to print, in delivery order, and notes which
/// message each came from. Messages that cannot be understood or name another bucket are
/// reported and kept (never deleted); keys that are no log files or already printed are
/// skipped.
async fn sort_out(
    settings: &Settings,
    bucket: &Bucket,
    state: &State,
    messages: &[Message],
    summary: &mut Summary,
) -> Result<(Vec<Tracked>, Vec<Pending>, Vec<Partition>), RunError> {
    let mut tracked = Vec::new();
    let mut pending: Vec<(Pending, usize)> = Vec::new();
    let mut partitions = Vec::new();
    let report = |summary: &mut Summary, what: String, reason: String| {
        tracing::error!(
            "{what}: {reason}; the message stays in the queue (for its dead-letter queue)"
        );
        summary.failed_objects += 1;
        if summary.errors.len() < ERRORS_KEPT {
            summary.errors.push(ObjectError { key: what, reason });
        }
    };
    for message in messages {
        let id = message.message_id().unwrap_or("?");
        let Some(receipt) = message.receipt_handle() else {
            continue;
        };
        let mut track = Tracked {
            receipt: receipt.to_owned(),
            objects: Vec::new(),
            keep: false,
        };
        let objects = match objects_in(message.body().unwrap_or("")) {
            Ok(objects) => objects,
            Err(reason) => {
                report(
                    summary,
                    format!(
                        "SQS message {id} of {}",
                        settings.sqs_queue_url.as_deref().unwrap_or("")
                    ),
                    reason,
                );
                track.keep = true;
                tracked.push(track);
                continue;
            }
        };
        for object in objects {
            if object.bucket != settings.bucket {
                report(
                    summary,
                    format!("s3://{}/{}", object.bucket, object.key),
                    format!(
                        "SQS message {id} names bucket {}, but this run reads {} (give each \
                         trail bucket a queue of its own, or a run with its --bucket)",
                        object.bucket, settings.bucket
                    ),
                );
                track.keep = true;
                continue;
            }
            let partition = layout::partition_of(&settings.prefix, &object.key);
            let file = partition.as_ref().and_then(|p| p.log_file(&object.key));
            let (Some(partition), Some(file)) = (partition.clone(), file) else {
                tracing::debug!("skipping {}: not a CloudTrail log file", object.key);
                continue;
            };
            let wanted = (settings.filters.accounts.is_empty()
                || settings.filters.accounts.contains(&partition.account))
                && (settings.filters.regions.is_empty()
                    || settings.filters.regions.contains(&partition.region));
            if !wanted || state.is_done(&object.key)? {
                continue;
            }
            let size = match object.size {
                Some(size) => size,
                None => match bucket.size_of(&object.key).await {
                    Ok(size) => size,
                    Err(e) => {
                        report(
                            summary,
                            format!("s3://{}/{}", object.bucket, object.key),
                            e.to_string(),
                        );
                        track.keep = true;
                        continue;
                    }
                },
            };
            if size == 0 {
                continue;
            }
            partitions.push(partition);
            pending.push((
                Pending {
                    resume_from: state.resume_from(&object.key)?,
                    date: file.date,
                    stamp: file.stamp.to_owned(),
                    size,
                    key: object.key,
                },
                tracked.len(),
            ));
        }
        tracked.push(track);
    }
    pending.sort_by(|(a, _), (b, _)| (a.date, &a.stamp, &a.key).cmp(&(b.date, &b.stamp, &b.key)));
    // One object named by two messages is printed once; both messages wait for it.
    let mut queue: Vec<Pending> = Vec::new();
    let mut position: HashMap<String, usize> = HashMap::new();
    for (object, message) in pending {
        let at = *position.entry(object.key.clone()).or_insert_with(|| {
            queue.push(object);
            queue.len() - 1
        });
        tracked[message].objects.push(at);
    }
    Ok((tracked, queue, partitions))
}

/// Deletes the messages whose objects are all done, gives back at once those the budget cut
/// or did not reach, and leaves the others (an object failed; the message was not
/// understood) to come back after their visibility timeout. A dry run deletes nothing.
async fn acknowledge(
    settings: &Settings,
    queue: &Queue,
    tracked: &[Tracked],
    acked: &[Acked],
    held: &mut Vec<String>,
) -> Result<(), SqsError> {
    let mut delete = Vec::new();
    let mut give_back = Vec::new();
    for message in tracked {
        let ends: Vec<Acked> = message.objects.iter().map(|&i| acked[i]).collect();
        if message.keep || ends.contains(&Acked::Failed) {
            continue;
        }
        if ends.iter().all(|&e| e == Acked::Done) && !settings.dry_run {
            delete.push(message.receipt.clone());
        } else if ends.iter().all(|&e| e == Acked::Done) {
            held.push(message.receipt.clone());
        } else {
            give_back.push(message.receipt.clone());
        }
    }
    queue.delete(&delete).await?;
    queue.set_visibility(&give_back, 0).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/12/01/111122223333_CloudTrail_us-east-1_20261201T0905Z_abc.json.gz";

    fn one(bucket: &str, key: &str, size: Option<u64>) -> Vec<Notified> {
        vec![Notified {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            size,
        }]
    }

    #[test]
    fn every_notification_shape_names_its_objects() {
        let s3_event = serde_json::json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "trail"}, "object": {"key": KEY.replace('/', "%2F"), "size": 812}}}]})
        .to_string();
        let sns =
            serde_json::json!({"Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:1:t",
            "Message": s3_event})
            .to_string();
        let eventbridge =
            serde_json::json!({"version": "0", "detail-type": "Object Created", "source": "aws.s3",
            "detail": {"bucket": {"name": "trail"}, "object": {"key": KEY, "size": 812}}})
            .to_string();
        let cloudtrail =
            serde_json::json!({"s3Bucket": "trail", "s3ObjectKey": [KEY, "k2"]}).to_string();
        let cloudtrail_sns =
            serde_json::json!({"Type": "Notification", "Message": cloudtrail}).to_string();
        for (name, body, want) in [
            ("S3 event", s3_event.clone(), one("trail", KEY, Some(812))),
            ("S3 event in SNS", sns, one("trail", KEY, Some(812))),
            ("EventBridge", eventbridge, one("trail", KEY, Some(812))),
            (
                "CloudTrail, raw",
                cloudtrail.clone(),
                [one("trail", KEY, None), one("trail", "k2", None)].concat(),
            ),
            (
                "CloudTrail in SNS",
                cloudtrail_sns,
                [one("trail", KEY, None), one("trail", "k2", None)].concat(),
            ),
            (
                "S3 test event",
                r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"trail"}"#.to_owned(),
                Vec::new(),
            ),
        ] {
            assert_eq!(objects_in(&body).unwrap(), want, "{name}");
        }
    }

    #[test]
    fn s3_event_keys_are_url_decoded() {
        assert_eq!(url_decode("a%2Fb+c%25.json.gz").unwrap(), "a/b c%.json.gz");
        assert!(url_decode("bad%2").is_err());
        assert!(url_decode("bad%zz").is_err());
    }

    #[test]
    fn unknown_shapes_are_errors() {
        for body in [
            "not json",
            "{}",
            r#"{"Records":[{"s3":{}}]}"#,
            r#"{"Type":"Notification","Message":"x"}"#,
        ] {
            assert!(objects_in(body).is_err(), "{body}");
        }
    }

    #[test]
    fn the_region_is_read_off_an_aws_queue_url() {
        assert_eq!(
            region_of("https://sqs.eu-west-1.amazonaws.com/111122223333/trail").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(region_of("http://127.0.0.1:4566/000000000000/trail"), None);
    }
}
