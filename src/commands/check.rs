//! `check`: walks a new install through what a real run needs, in the order a run needs it,
//! and says for each step in plain words whether it works and, when not, what to do.
//! Credentials (and whose they are), the bucket and its region, the trail's accounts,
//! organisations and regions, with `--sqs-queue-url` the queue (its settings, its dead-letter
//! queue, the permissions a run needs on it), reading and decompressing one object, the state.
//! Ends with the `<localfile>` block to paste. Exit code 0 only when a real run would work.
//!
//! It uses the collector's own modules for each step, so it checks what a run would really do.

use std::fmt;
use std::io;

use serde_json::Value;
use time::{Duration, OffsetDateTime};

use crate::cli::{exit, AgentOptions, Target};
use crate::decode::{self, RecordReader};
use crate::fetch::{self, FetchError};
use crate::layout::{self, Partition};
use crate::listing::{self, Filters};
use crate::s3::{Bucket, S3Error, S3ErrorKind};
use crate::sqs::{self, Queue, SqsError, SqsErrorKind};
use crate::state::{State, StateError};

use super::ossec_conf::localfile_block;

/// How many partitions are tried when looking for one object to read.
const PARTITIONS_TO_SAMPLE: usize = 5;
/// Days back from today that the object to read is looked for first (the newest show
/// today's permissions; an old one may predate a change of KMS key).
const RECENT_DAYS: i64 = 7;

enum Outcome {
    Ok(String),
    /// Works, with something worth knowing.
    Warn(String),
    Fail {
        what: String,
        todo: String,
    },
    /// Not tried because an earlier step failed.
    Skipped(&'static str),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok(text) => write!(f, "ok    {text}"),
            Outcome::Warn(text) => write!(f, "note  {text}"),
            Outcome::Fail { what, todo } => write!(f, "FAIL  {what}\n      what to do: {todo}"),
            Outcome::Skipped(what) => write!(f, "skip  {what} (needs the steps above)"),
        }
    }
}

/// The steps' outcomes, printed as they come.
#[derive(Default)]
struct Report {
    failed: usize,
}

impl Report {
    fn tell(&mut self, step: &str, outcome: Outcome) {
        if matches!(outcome, Outcome::Fail { .. }) {
            self.failed += 1;
        }
        println!("{step:<12}{outcome}");
    }
}

pub async fn run(target: &Target, sqs_queue_url: Option<&str>, agent: &AgentOptions) -> u8 {
    let prefix = target.prefix();
    println!(
        "Checking what a run of ossec-cloudtrail needs, for s3://{}/{prefix}{}\n",
        target.bucket(),
        sqs_queue_url
            .map(|url| format!(" through the SQS queue {url}"))
            .unwrap_or_default()
    );
    let mut report = Report::default();
    let connection = match target.connection() {
        Ok(connection) => connection,
        Err(message) => {
            tracing::error!("{message}");
            return exit::USAGE;
        }
    };
    let bucket = Bucket::connect(target.bucket(), &connection).await;
    // With the bucket's credentials and endpoint, as a run's queue has them.
    let queue = sqs_queue_url.map(|url| Queue::new(url, &bucket));

    if let Some(route) = bucket.proxy_route() {
        report.tell("proxy", Outcome::Ok(route));
    }
    let credentials = check_credentials(&bucket).await;
    let mut credentials_work = !matches!(credentials, Outcome::Fail { .. });
    report.tell("credentials", credentials);
    if credentials_work && bucket.role().is_some() {
        let role = check_role(&bucket).await;
        credentials_work = !matches!(role, Outcome::Fail { .. });
        report.tell("role", role);
    }
    let reachable = if credentials_work {
        check_bucket(&mut report, bucket, target, &prefix, queue.is_some()).await
    } else {
        report.tell("bucket", Outcome::Skipped("bucket and region"));
        report.tell(
            "logs",
            Outcome::Skipped("accounts and regions of the trail"),
        );
        None
    };
    // A run with a queue reaches it before it reads any object; a message waiting there may
    // name the object to read.
    let mut notified = None;
    if let Some(queue) = &queue {
        if credentials_work {
            notified = check_queue(&mut report, queue, target, &prefix).await;
        } else {
            report.tell("queue", Outcome::Skipped("the SQS queue"));
            report.tell("dead-letter", Outcome::Skipped("its dead-letter queue"));
            report.tell(
                "sqs access",
                Outcome::Skipped("the permissions on the queue"),
            );
        }
    }
    match reachable {
        Some((bucket, partitions)) => {
            report.tell(
                "read",
                check_read(&bucket, partitions.as_deref(), notified.as_deref()).await,
            );
            if let Some(partitions) = &partitions {
                report.tell("digests", check_digests(&bucket, partitions).await);
            }
        }
        None => report.tell("read", Outcome::Skipped("reading one object")),
    }
    report.tell("state", check_state(target, &prefix));

    println!();
    if report.failed == 0 {
        println!("All checks passed: a real run would work. Add this to the agent's ossec.conf:\n");
    } else {
        println!(
            "{} check(s) failed: a real run would not work yet. Fix them and run check again; \
             then add this to the agent's ossec.conf:\n",
            report.failed
        );
    }
    let extra: Vec<String> = sqs_queue_url
        .map(|url| vec!["--sqs-queue-url".to_owned(), url.to_owned()])
        .unwrap_or_default();
    print!("{}", localfile_block(target, &extra, agent));
    if report.failed == 0 {
        exit::OK
    } else {
        exit::FAILED
    }
}

async fn check_credentials(bucket: &Bucket) -> Outcome {
    if let Err(reason) = bucket.has_credentials().await {
        // The chain's own account lists every source it tried, each with its reason: too
        // long for one line, and the advice below names the sources anyway.
        let reason = reason.split(" Attempted").next().unwrap_or(&reason);
        return Outcome::Fail {
            what: format!(
                "no AWS credentials found ({})",
                reason.trim_end_matches('.')
            ),
            todo: "give this user credentials through the standard AWS chain: an instance or \
                   container role, AWS_PROFILE or --profile, or AWS_ACCESS_KEY_ID and \
                   AWS_SECRET_ACCESS_KEY; the agent must see the same (it often runs without \
                   HOME, see the README's troubleshooting)"
                .to_owned(),
        };
    }
    // With --role-arn, the credentials that assume it: the role's trust policy names them.
    match bucket.base_caller_arn().await {
        Ok(arn) if bucket.role().is_some() => {
            Outcome::Ok(format!("found, they are {arn}; they assume the role below"))
        }
        Ok(arn) => Outcome::Ok(format!("found, they are {arn}")),
        Err(reason)
            if [
                "InvalidClientTokenId",
                "SignatureDoesNotMatch",
                "ExpiredToken",
            ]
            .iter()
            .any(|code| reason.contains(code)) =>
        {
            Outcome::Fail {
                what: format!("AWS refused the credentials ({reason})"),
                todo: "the key is unknown, mistyped or expired: renew it, or check which \
                       profile or environment this user (and the agent) gets"
                    .to_owned(),
            }
        }
        Err(reason) => Outcome::Warn(format!(
            "found, but STS could not say whose they are ({reason}); the bucket steps below \
             tell whether they work"
        )),
    }
}

/// With --role-arn: assumes the role as every run does, and says as whom requests are made.
async fn check_role(bucket: &Bucket) -> Outcome {
    let arn = bucket.role().map(|r| r.arn.clone()).unwrap_or_default();
    match bucket.assume_role().await {
        Err(e) if matches!(e.kind, S3ErrorKind::AssumeRoleDenied(_)) => {
            let S3ErrorKind::AssumeRoleDenied(mut denied) = e.kind.clone() else {
                unreachable!("matched above")
            };
            if denied.principal.is_none() {
                denied.principal = bucket.base_caller_arn().await.ok();
            }
            Outcome::Fail {
                what: format!("{} [{}]", denied.refusal(), e.detail()),
                todo: denied.advice(),
            }
        }
        Err(e) => Outcome::Fail {
            what: format!("cannot assume the role {arn}: {e}"),
            todo: "check --role-arn (and --role-duration: at most the role's maximum session \
                   duration), and that STS is reachable (network, proxy, --endpoint-url)"
                .to_owned(),
        },
        Ok(()) => match bucket.caller_arn().await {
            Ok(identity) => Outcome::Ok(format!("assumed {arn}: requests are made as {identity}")),
            Err(reason) => Outcome::Warn(format!(
                "assumed {arn}, but STS could not say as whom ({reason})"
            )),
        },
    }
}

/// Lists the trail (following the bucket to its region as a polling run does) and tells what
/// it found. Returns the bucket and its partitions when a run could use them; with a queue
/// (`sqs`), also the bucket alone when only the listing is denied, which such runs do not need.
async fn check_bucket(
    report: &mut Report,
    mut bucket: Bucket,
    target: &Target,
    prefix: &str,
    sqs: bool,
) -> Option<(Bucket, Option<Vec<Partition>>)> {
    // A polling run follows a bucket to its region only when no region was pinned (with or
    // without --endpoint-url), so check does the same; a run with a queue never follows it.
    let pinned = target.region.is_some();
    let runs_sign_for = bucket.region();
    let filters = Filters::default();
    let mut partitions = listing::discover(&bucket, prefix, &filters).await;
    if let Err(S3Error {
        kind: S3ErrorKind::WrongRegion(Some(region)),
        ..
    }) = &partitions
    {
        if !pinned {
            bucket = bucket.in_region(region);
            partitions = listing::discover(&bucket, prefix, &filters).await;
        }
    }
    let partitions = match partitions {
        Ok(partitions) => partitions,
        Err(e) if sqs && e.kind == S3ErrorKind::AccessDenied => {
            report.tell(
                "bucket",
                Outcome::Warn(format!(
                    "s3:ListBucket is denied on bucket {}: runs with --sqs-queue-url do not need \
                     it, but a polling run (to backfill history) does, and without it check \
                     cannot look into the trail's folders",
                    target.bucket()
                )),
            );
            report.tell(
                "logs",
                Outcome::Skipped("accounts and regions of the trail"),
            );
            return Some((bucket, None));
        }
        Err(e) => {
            report.tell("bucket", bucket_failure(&e));
            report.tell(
                "logs",
                Outcome::Skipped("accounts and regions of the trail"),
            );
            return None;
        }
    };
    let signing = bucket.region();
    let located = bucket.locate().await;
    let bucket_outcome = match located {
        Ok(Some(region)) if region != signing && pinned => Outcome::Fail {
            what: format!(
                "bucket {} is in region {region}, but this command talks to {signing}",
                target.bucket()
            ),
            todo: format!("pass --region {region}"),
        },
        Ok(Some(region)) if sqs && region != runs_sign_for => Outcome::Fail {
            what: format!(
                "bucket {} is in region {region}, but runs talk to {runs_sign_for}, and with \
                 --sqs-queue-url they do not follow it there",
                target.bucket()
            ),
            todo: format!(
                "pass --region {region} (an AWS queue URL names its own region, which the \
                 queue keeps)"
            ),
        },
        Ok(Some(region)) if region != signing => Outcome::Warn(format!(
            "bucket {} is reachable, in region {region}; runs find it there, and --region \
             {region} saves them the detour",
            target.bucket()
        )),
        Ok(Some(region)) => Outcome::Ok(format!(
            "bucket {} is reachable, in region {region}",
            target.bucket()
        )),
        Ok(None) | Err(_) => Outcome::Ok(format!(
            "bucket {} is reachable (through region {signing})",
            target.bucket()
        )),
    };
    let bucket_failed = matches!(bucket_outcome, Outcome::Fail { .. });
    report.tell("bucket", bucket_outcome);

    if partitions.is_empty() {
        let holds = match listing::what_is_under(&bucket, prefix).await {
            Ok(found) if found.is_empty() => format!("s3://{}/{prefix} is empty", bucket.name()),
            Ok(found) => format!("it holds: {}", found.join(", ")),
            Err(e) => e.to_string(),
        };
        report.tell(
            "logs",
            Outcome::Fail {
                what: format!(
                    "no CloudTrail logs under s3://{}/{prefix}AWSLogs/; {holds}",
                    bucket.name()
                ),
                todo: "set --prefix to what comes before AWSLogs/ in the trail's keys (the \
                       trail's S3 key prefix), or check --bucket"
                    .to_owned(),
            },
        );
        return None;
    }
    report.tell("logs", Outcome::Ok(describe(&partitions)));
    (!bucket_failed).then_some((bucket, Some(partitions)))
}

/// Whether the trail writes digest files (log file validation), which `--validate-digests`
/// verifies: one listing of the first partition's digest folder.
async fn check_digests(bucket: &Bucket, partitions: &[Partition]) -> Outcome {
    let Some(partition) = partitions.first() else {
        return Outcome::Skipped("digest files");
    };
    let prefix = partition.digest_prefix();
    match bucket.list_page(&prefix, false, None, None).await {
        Ok(page)
            if page
                .objects
                .iter()
                .any(|o| partition.digest_file(&o.key).is_some()) =>
        {
            Outcome::Warn(format!(
                "the trail writes digest files (log file validation is on), e.g. under \
                 s3://{}/{prefix}: add --validate-digests to verify them at each run and \
                 alert when log files are deleted or altered (needs cloudtrail:ListPublicKeys, \
                 or --digest-public-keys FILE)",
                bucket.name()
            ))
        }
        Ok(_) => Outcome::Ok(format!(
            "no digest files under s3://{}/{prefix}: log file validation is off for this \
             trail (turn it on to be able to prove that no log file was deleted or altered; \
             CIS AWS 3.2)",
            bucket.name()
        )),
        Err(e) => Outcome::Warn(format!("cannot list {prefix} for digest files: {e}")),
    }
}

fn bucket_failure(e: &S3Error) -> Outcome {
    let todo = match &e.kind {
        S3ErrorKind::NoSuchBucket => {
            "check the name with the trail's settings (aws cloudtrail describe-trails), and \
             --endpoint-url if you use one"
        }
        S3ErrorKind::AccessDenied => {
            "allow s3:ListBucket on arn:aws:s3:::BUCKET to these credentials (bucket policy \
             or IAM policy)"
        }
        S3ErrorKind::WrongRegion(_) => "pass the bucket's region with --region",
        S3ErrorKind::NoCredentials | S3ErrorKind::BadCredentials => {
            "fix the credentials, see the step above"
        }
        S3ErrorKind::Unreachable | S3ErrorKind::Timeout => {
            "check the network path to S3 (proxy, VPC endpoint, firewall) and --endpoint-url"
        }
        S3ErrorKind::AssumeRoleDenied(_) => {
            "allow it in the role's trust policy, see the role step"
        }
        S3ErrorKind::Other => "read S3's answer above",
    };
    Outcome::Fail {
        what: e.to_string(),
        todo: todo.replace("BUCKET", &e.bucket),
    }
}

/// "2 accounts (111122223333, 444455556666), organisation o-..., regions eu-west-1, us-east-1".
fn describe(partitions: &[Partition]) -> String {
    let mut accounts: Vec<&str> = partitions.iter().map(|p| p.account.as_str()).collect();
    let mut orgs: Vec<&str> = partitions.iter().filter_map(|p| p.org.as_deref()).collect();
    let mut regions: Vec<&str> = partitions.iter().map(|p| p.region.as_str()).collect();
    for list in [&mut accounts, &mut orgs, &mut regions] {
        list.sort_unstable();
        list.dedup();
    }
    let orgs = if orgs.is_empty() {
        "no organisation trail".to_owned()
    } else {
        format!("organisation {}", orgs.join(", "))
    };
    format!(
        "{} account(s): {}; {orgs}; {} region(s): {}",
        accounts.len(),
        accounts.join(", "),
        regions.len(),
        regions.join(", ")
    )
}

/// Reads and decompresses one recent log file, as a run would: the step that catches a
/// missing s3:GetObject or kms:Decrypt. The file is the newest of the listed `partitions`, else
/// the one a message waiting in the queue names (`notified`); `partitions` is `None` when the
/// bucket could not be listed.
async fn check_read(
    bucket: &Bucket,
    partitions: Option<&[Partition]>,
    notified: Option<&str>,
) -> Outcome {
    let listed = match partitions {
        Some(partitions) => sample_key(bucket, partitions).await,
        None => Ok(None),
    };
    let key = match (listed, notified) {
        (Ok(Some(key)), _) => key,
        (Ok(None), Some(key)) => key.to_owned(),
        (Ok(None), None) if partitions.is_none() => {
            return Outcome::Warn(
                "no message waiting in the queue names a log file, and without s3:ListBucket \
                 check cannot pick one, so reading one could not be tried (run check again \
                 when CloudTrail has delivered, about every 5 minutes)"
                    .to_owned(),
            )
        }
        (Ok(None), None) => {
            return Outcome::Warn(
                "the trail's folders hold no log file yet, so reading one could not be tried \
                 (CloudTrail delivers about every 5 minutes; run check again later)"
                    .to_owned(),
            )
        }
        (Err(e), _) => return bucket_failure(&e),
    };
    let data = match fetch::download(bucket, &key).await {
        Ok(data) => data,
        Err(FetchError::S3(e)) if e.kind == S3ErrorKind::AccessDenied => {
            return Outcome::Fail {
                what: format!("access denied reading s3://{}/{key}", bucket.name()),
                todo: format!(
                    "allow s3:GetObject on arn:aws:s3:::{}/*; if the trail encrypts with a KMS \
                     key (SSE-KMS), also kms:Decrypt on that key, which S3 reports as the same \
                     AccessDenied",
                    bucket.name()
                ),
            }
        }
        Err(e) => {
            return Outcome::Fail {
                what: format!("cannot download s3://{}/{key}: {e}", bucket.name()),
                todo: "check s3:GetObject (and kms:Decrypt for SSE-KMS) and the network".to_owned(),
            }
        }
    };
    let bytes = data.len();
    let counted = tokio::task::spawn_blocking(move || count_records(data))
        .await
        .expect("counting records cannot panic");
    match counted {
        Ok(records) => Outcome::Ok(format!(
            "read and decompressed s3://{}/{key}: {records} records ({bytes} bytes)",
            bucket.name()
        )),
        Err(reason) => Outcome::Fail {
            what: format!("s3://{}/{key} cannot be read: {reason}", bucket.name()),
            todo: "make sure the trail writes here and nothing else does with CloudTrail's \
                   names; a run reports such an object on each run and exits with code 3"
                .to_owned(),
        },
    }
}

fn count_records(data: bytes::Bytes) -> Result<u64, String> {
    let reader = decode::open(io::Cursor::new(data)).map_err(|e| e.to_string())?;
    let mut records = RecordReader::new(reader);
    while records.next_record().map_err(|e| e.to_string())?.is_some() {}
    Ok(records.records())
}

/// The newest log file of the first partitions that have one, looked for in recent days
/// first.
async fn sample_key(bucket: &Bucket, partitions: &[Partition]) -> Result<Option<String>, S3Error> {
    let recent = OffsetDateTime::now_utc().date() - Duration::days(RECENT_DAYS);
    for partition in partitions.iter().take(PARTITIONS_TO_SAMPLE) {
        let since = partition.day_folder(recent);
        for start_after in [Some(since.as_str()), None] {
            let page = bucket
                .list_page(&partition.prefix, false, start_after, None)
                .await?;
            if let Some(object) = page
                .objects
                .iter()
                .rev()
                .find(|o| o.size > 0 && partition.log_file(&o.key).is_some())
            {
                return Ok(Some(object.key.clone()));
            }
        }
    }
    Ok(None)
}

fn check_state(target: &Target, prefix: &str) -> Outcome {
    let path = match target.state_path() {
        Ok(path) => path,
        Err(message) => {
            return Outcome::Fail {
                what: message,
                todo: "pass --state with a directory for the agent's runs".to_owned(),
            }
        }
    };
    match State::open(&path, target.bucket(), prefix, false) {
        Ok(_) => Outcome::Ok(format!("{} is writable", path.display())),
        Err(StateError::Busy { .. }) => Outcome::Warn(format!(
            "{} is in use by a run right now, so it works",
            path.display()
        )),
        Err(e) => Outcome::Fail {
            what: e.to_string(),
            todo: format!(
                "the agent's runs need {} (or another --state) writable by the user the \
                 agent runs commands as",
                path.display()
            ),
        },
    }
}

/// The queue's steps: reaching it (sqs:GetQueueAttributes) and its settings, its dead-letter
/// queue, the other permissions a run needs on it, and what a waiting message names. Takes
/// nothing from the queue. Returns the key of a log file of this trail that a waiting message
/// names, for the read step.
async fn check_queue(
    report: &mut Report,
    queue: &Queue,
    target: &Target,
    prefix: &str,
) -> Option<String> {
    let mut arn = queue_arn(queue.url());
    match queue.attributes().await {
        Ok(attributes) => {
            if let Some(queue_arn) = attributes.get("QueueArn") {
                arn = queue_arn.clone();
            }
            report.tell(
                "queue",
                Outcome::Ok(describe_queue(queue.url(), &attributes)),
            );
            report.tell("dead-letter", dead_letter(&attributes));
        }
        // The queue may well be there: the other permissions are still worth trying.
        Err(e) if e.kind == SqsErrorKind::AccessDenied => {
            report.tell("queue", queue_failure(&e, &arn));
            report.tell("dead-letter", Outcome::Skipped("its dead-letter queue"));
        }
        Err(e) => {
            report.tell("queue", queue_failure(&e, &arn));
            report.tell("dead-letter", Outcome::Skipped("its dead-letter queue"));
            report.tell(
                "sqs access",
                Outcome::Skipped("the permissions on the queue"),
            );
            return None;
        }
    }
    let tried = match queue.peek().await {
        Ok(peek) => queue.may_delete().await.map(|delete| (peek, delete)),
        Err(e) => Err(e),
    };
    let (peek, may_delete) = match tried {
        Ok(tried) => tried,
        Err(e) => {
            report.tell("sqs access", queue_failure(&e, &arn));
            return None;
        }
    };
    let denied: Vec<&str> = [
        (peek.may_receive, "sqs:ReceiveMessage"),
        (peek.may_change_visibility, "sqs:ChangeMessageVisibility"),
        (may_delete, "sqs:DeleteMessage"),
    ]
    .into_iter()
    .filter_map(|(allowed, action)| (!allowed).then_some(action))
    .collect();
    report.tell(
        "sqs access",
        if denied.is_empty() {
            Outcome::Ok(format!(
                "sqs:ReceiveMessage, sqs:ChangeMessageVisibility and sqs:DeleteMessage are \
                 allowed ({}; nothing was deleted)",
                if peek.body.is_some() {
                    "a message was received and made visible again at once"
                } else {
                    "no message was waiting"
                }
            ))
        } else {
            Outcome::Fail {
                what: format!(
                    "the credentials may not use {} on the queue",
                    denied.join(", ")
                ),
                todo: grant(&arn),
            }
        },
    );
    let body = peek.body?;
    let (outcome, key) = check_message(&body, target.bucket(), prefix);
    report.tell("message", outcome);
    key
}

/// What a waiting message names, as a run would take it; the key of the log file of this
/// trail it names, if any.
fn check_message(body: &str, bucket: &str, prefix: &str) -> (Outcome, Option<String>) {
    let objects = match sqs::objects_in(body) {
        Ok(objects) => objects,
        Err(reason) => {
            return (
                Outcome::Warn(format!(
                    "a waiting message is no notification a run understands ({reason}): runs \
                     leave such messages for the dead-letter queue; send this queue only S3, \
                     SNS, EventBridge or CloudTrail notifications of the trail's bucket"
                )),
                None,
            )
        }
    };
    if let Some(other) = objects.iter().find(|o| o.bucket != bucket) {
        return (
            Outcome::Warn(format!(
                "a waiting message names s3://{}/{}, in another bucket: runs with --bucket \
                 {bucket} leave such messages for the dead-letter queue (give each trail bucket \
                 a queue of its own)",
                other.bucket, other.key
            )),
            None,
        );
    }
    let is_log =
        |key: &str| layout::partition_of(prefix, key).is_some_and(|p| p.log_file(key).is_some());
    match objects.iter().find(|o| is_log(&o.key)) {
        Some(log) => (
            Outcome::Ok(format!("a waiting message names s3://{bucket}/{}", log.key)),
            Some(log.key.clone()),
        ),
        None => match objects.first() {
            Some(object) => (
                Outcome::Warn(format!(
                    "a waiting message names s3://{bucket}/{}, which is no CloudTrail log \
                     file under s3://{bucket}/{prefix}AWSLogs/: runs skip such objects (digests, \
                     Insights); if it is a log file, set --prefix to what comes before AWSLogs/",
                    object.key
                )),
                None,
            ),
            None => (
                Outcome::Ok(
                    "a waiting message names no object (S3's test event, or an event other \
                     than Object Created): runs delete it"
                        .to_owned(),
                ),
                None,
            ),
        },
    }
}

/// "URL is reachable: visibility timeout 300 s, about 3 message(s) waiting, 0 in flight".
fn describe_queue(url: &str, attributes: &std::collections::HashMap<String, String>) -> String {
    let get = |name: &str| attributes.get(name).map_or("?", String::as_str);
    format!(
        "{url} is reachable: visibility timeout {} s, about {} message(s) waiting, {} in flight",
        get("VisibilityTimeout"),
        get("ApproximateNumberOfMessages"),
        get("ApproximateNumberOfMessagesNotVisible")
    )
}

/// Whether the queue has a dead-letter queue, and after how many receives it takes a message.
fn dead_letter(attributes: &std::collections::HashMap<String, String>) -> Outcome {
    let Some(policy) = attributes.get("RedrivePolicy").filter(|p| !p.is_empty()) else {
        return Outcome::Warn(
            "the queue has no dead-letter queue (RedrivePolicy): a message whose object cannot \
             be read is never deleted, so it would come back forever and every run would \
             report it again; give the queue one, with maxReceiveCount 5 (ossec-conf/README.md, \
             SQS mode)"
                .to_owned(),
        );
    };
    let policy: Value = serde_json::from_str(policy).unwrap_or_default();
    let target = policy["deadLetterTargetArn"]
        .as_str()
        .unwrap_or("(its ARN unreadable)");
    let count = &policy["maxReceiveCount"];
    let count = count
        .as_u64()
        .or_else(|| count.as_str().and_then(|c| c.parse().ok()));
    match count {
        Some(n) if n < 3 => Outcome::Warn(format!(
            "messages go to the dead-letter queue {target} after only {n} receive(s): a message \
             a run gives back at its line budget, or that check looks at, is received again \
             too, so one whose object can be read may end there; 5 leaves room"
        )),
        Some(n) => Outcome::Ok(format!(
            "a message received {n} times without being deleted (its object cannot be read) \
             goes to the dead-letter queue {target}"
        )),
        None => Outcome::Ok(format!(
            "messages that keep failing go to the dead-letter queue {target}"
        )),
    }
}

fn queue_failure(e: &SqsError, arn: &str) -> Outcome {
    let todo = match e.kind {
        SqsErrorKind::NoSuchQueue => {
            "copy the URL from `aws sqs get-queue-url --queue-name NAME --region REGION`; \
             with --endpoint-url, the queue must be on that endpoint"
                .to_owned()
        }
        SqsErrorKind::AccessDenied => grant(arn),
        SqsErrorKind::BadCredentials | SqsErrorKind::NoCredentials => {
            "fix the credentials, see the step above".to_owned()
        }
        SqsErrorKind::AssumeRoleDenied => {
            "let these credentials assume the role (its trust policy), as the message says"
                .to_owned()
        }
        SqsErrorKind::Unreachable => {
            "check the network path to SQS (proxy, VPC endpoint, firewall) and --endpoint-url"
                .to_owned()
        }
        SqsErrorKind::Other => "read SQS's answer above".to_owned(),
    };
    Outcome::Fail {
        what: e.to_string(),
        todo,
    }
}

fn grant(arn: &str) -> String {
    format!(
        "allow sqs:GetQueueAttributes, sqs:ReceiveMessage, sqs:ChangeMessageVisibility and \
         sqs:DeleteMessage on {arn} to these credentials (their IAM policy, or the queue's \
         access policy), and kms:Decrypt on the queue's KMS key if it has one \
         (ossec-conf/README.md, SQS mode)"
    )
}

/// `arn:aws:sqs:REGION:ACCOUNT:NAME` for an AWS queue URL
/// (`https://sqs.REGION.amazonaws.com/ACCOUNT/NAME`), else the URL itself.
fn queue_arn(url: &str) -> String {
    let parts: Vec<&str> = url.split("://").nth(1).unwrap_or("").split('/').collect();
    let region = parts[0]
        .strip_prefix("sqs.")
        .and_then(|rest| rest.split('.').next())
        .filter(|r| layout::is_region(r));
    match (region, &parts[1..]) {
        (Some(region), [account, name]) if layout::is_account_id(account) => {
            format!("arn:aws:sqs:{region}:{account}:{name}")
        }
        _ => format!("the queue {url}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_aws_queue_url_gives_its_arn() {
        assert_eq!(
            queue_arn("https://sqs.eu-west-1.amazonaws.com/111122223333/trail"),
            "arn:aws:sqs:eu-west-1:111122223333:trail"
        );
        assert_eq!(
            queue_arn("http://127.0.0.1:4566/000000000000/trail"),
            "the queue http://127.0.0.1:4566/000000000000/trail"
        );
    }

    #[test]
    fn a_dead_letter_queue_is_read_off_the_redrive_policy() {
        let with = |policy: &str| {
            let attributes = [("RedrivePolicy".to_owned(), policy.to_owned())].into();
            dead_letter(&attributes).to_string()
        };
        let ok =
            with(r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:1:dlq","maxReceiveCount":"5"}"#);
        assert!(
            ok.starts_with("ok") && ok.contains("5 times") && ok.contains(":dlq"),
            "{ok}"
        );
        let low =
            with(r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:1:dlq","maxReceiveCount":1}"#);
        assert!(low.starts_with("note") && low.contains("only 1"), "{low}");
        let none = dead_letter(&Default::default()).to_string();
        assert!(
            none.starts_with("note") && none.contains("no dead-letter queue"),
            "{none}"
        );
    }
}
