//! `check`: walks a new install through what a real run needs, in the order a run needs it,
//! and says for each step in plain words whether it works and, when not, what to do.
//! Credentials (and whose they are), the bucket and its region, the trail's accounts,
//! organisations and regions, reading and decompressing one object, the state. Ends with the
//! `<localfile>` block to paste. Exit code 0 only when a real run would work.
//!
//! It uses the collector's own modules for each step, so it checks what a run would really do.

use std::fmt;
use std::io;

use time::{Duration, OffsetDateTime};

use crate::cli::{exit, AgentOptions, Target};
use crate::decode::{self, RecordReader};
use crate::fetch::{self, FetchError};
use crate::layout::Partition;
use crate::listing::{self, Filters};
use crate::s3::{Bucket, S3Error, S3ErrorKind};
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

pub async fn run(target: &Target, agent: &AgentOptions) -> u8 {
    let prefix = target.prefix();
    println!(
        "Checking what a run of ossec-cloudtrail needs, for s3://{}/{prefix}\n",
        target.bucket()
    );
    let mut report = Report::default();
    let bucket = Bucket::connect(target.bucket(), &target.connection()).await;

    let credentials = check_credentials(&bucket).await;
    let credentials_work = !matches!(credentials, Outcome::Fail { .. });
    report.tell("credentials", credentials);
    let reachable = if credentials_work {
        check_bucket(&mut report, bucket, target, &prefix).await
    } else {
        report.tell("bucket", Outcome::Skipped("bucket and region"));
        report.tell(
            "logs",
            Outcome::Skipped("accounts and regions of the trail"),
        );
        None
    };
    match reachable {
        Some((bucket, partitions)) => report.tell("read", check_read(&bucket, &partitions).await),
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
    print!("{}", localfile_block(target, &[], agent));
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
    match bucket.caller_arn().await {
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

/// Lists the trail (following the bucket to its region as a run does) and tells what it found.
/// Returns the bucket and its partitions when a run could list them.
async fn check_bucket(
    report: &mut Report,
    mut bucket: Bucket,
    target: &Target,
    prefix: &str,
) -> Option<(Bucket, Vec<Partition>)> {
    // A run follows a bucket to its region only when no region was pinned (with or without
    // --endpoint-url), so check does the same.
    let pinned = target.region.is_some();
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
    (!bucket_failed).then_some((bucket, partitions))
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
/// missing s3:GetObject or kms:Decrypt.
async fn check_read(bucket: &Bucket, partitions: &[Partition]) -> Outcome {
    let key = match sample_key(bucket, partitions).await {
        Ok(Some(key)) => key,
        Ok(None) => {
            return Outcome::Warn(
                "the trail's folders hold no log file yet, so reading one could not be tried \
                 (CloudTrail delivers about every 5 minutes; run check again later)"
                    .to_owned(),
            )
        }
        Err(e) => return bucket_failure(&e),
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
