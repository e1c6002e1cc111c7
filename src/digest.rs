//! Digest verification (`--validate-digests`): with log file validation on, CloudTrail
//! delivers every hour, beside the logs, a digest file listing each log file of the hour with
//! the SHA-256 of its content, chained to the previous digest by its signature and signed
//! (RSA, SHA-256) with a key of the trail's home region. Someone who can write to the bucket
//! can delete or edit the log files that show what they did; this finds it.
//!
//! After the pipeline printed a run's records, each partition's new digests are read (one
//! LIST per partition once an hour, when the next digest is due), and for each digest, in
//! chain order:
//! - its signature is checked (the string CloudTrail signs: end time, bucket/key, SHA-256 of
//!   the uncompressed digest, previous signature), with the key `public_keys` finds;
//! - its link to the previous digest of the chain this state verified;
//! - each log file it lists, against the hash the pipeline took while printing it (a printed
//!   file is never downloaded again); a listed file the collector never printed is looked
//!   up, and hashed if it is there (older than the run's window, or unreadable).
//!
//! Each problem becomes one finding (a status event): a log file deleted or altered, a digest
//! missing from the chain or invalid, a chain whose link does not match, and logs without a
//! digest for over two hours. A digest is recorded as verified only after its findings were
//! printed and flushed, so each is reported once. Printing records never waits for digests: a
//! digest whose files this run has not printed yet (the line budget stopped it) waits for a
//! later run. A digest whose key cannot be had (ListPublicKeys refused, no such fingerprint) or
//! cannot be downloaded counts as a failed object of the run and is retried.
//!
//! Not here: how digest keys look (`layout`), where public keys come from (`public_keys`),
//! how a finding is written (`status`).

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use serde::Deserialize;
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::collect::{ObjectError, RunError, Settings, ERRORS_KEPT};
use crate::decode;
use crate::layout::Partition;
use crate::public_keys::{KeyError, PublicKeys};
use crate::s3::Bucket;
use crate::state::{Printed, State, StateError};
use crate::status::{self, Event, Kind};

/// Passes a log file's uncompressed content through while taking its SHA-256.
pub struct Hashing<R> {
    inner: R,
    context: Option<ring::digest::Context>,
}

impl<R: Read> Hashing<R> {
    /// Hashes only when `on`; otherwise it is the reader as it is.
    pub fn new(inner: R, on: bool) -> Self {
        Hashing {
            inner,
            context: on.then(|| ring::digest::Context::new(&ring::digest::SHA256)),
        }
    }

    /// Reads what is left (after the last record: whitespace) and returns the hash of all of
    /// it, `None` when not hashing or the rest cannot be read.
    pub fn finish(mut self) -> Option<[u8; 32]> {
        self.context.as_ref()?;
        io::copy(&mut self, &mut io::sink()).ok()?;
        let digest = self.context?.finish();
        digest.as_ref().try_into().ok()
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(context) = &mut self.context {
            context.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// What verification did in one run.
#[derive(Debug, Default)]
pub struct Report {
    pub digests: u64,
    /// Log files whose hash matched their digest's.
    pub log_files: u64,
    /// Listed log files printed before verification was turned on (no hash to compare).
    pub unhashed: u64,
    pub findings: u64,
    /// Digests that could not be verified this run (retried).
    pub failed: u64,
    pub errors: Vec<ObjectError>,
}

/// A log file older than this without a digest listing it is reported: digests cover an hour
/// and arrive within the next.
const DIGEST_LATE_AFTER: Duration = Duration::hours(2);

/// A digest file, as CloudTrail writes it (members this module uses).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DigestDocument {
    digest_start_time: String,
    digest_end_time: String,
    digest_s3_bucket: String,
    digest_s3_object: String,
    digest_public_key_fingerprint: String,
    previous_digest_s3_object: Option<String>,
    previous_digest_signature: Option<String>,
    #[serde(default)]
    log_files: Vec<ListedLog>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListedLog {
    s3_bucket: String,
    s3_object: String,
    hash_value: String,
}

/// What happened to one digest.
enum Checked {
    /// Verified (findings or not): record it.
    Done {
        findings: Vec<Event>,
        /// The chain's new end: (chain, signature), none for a backfill.
        link: Option<(String, String)>,
        covered: Vec<String>,
        /// Listed files whose hash matched.
        matched: u64,
        /// Listed files printed before verification was on.
        unhashed: u64,
        end: Option<OffsetDateTime>,
    },
    /// Some of its log files are still to be printed: a later run checks it.
    Waiting,
    /// It could not be checked this run.
    Failed(String),
}

/// Everything one digest check needs.
struct Verifier<'a> {
    settings: &'a Settings,
    bucket: &'a Bucket,
    state: &'a State,
    keys: &'a PublicKeys,
    /// The pipeline left work for the next run.
    behind: bool,
}

/// Verifies the new digests of `partitions`, printing findings to `out`.
pub async fn verify<W: Write>(
    settings: &Settings,
    bucket: &Bucket,
    state: &State,
    partitions: &[Partition],
    behind: bool,
    out: &mut W,
) -> Result<Report, RunError> {
    let mut report = Report::default();
    let keys_file = settings
        .digests
        .as_ref()
        .and_then(|d| d.public_keys.as_deref());
    let keys = match PublicKeys::new(keys_file, bucket.shared()) {
        Ok(keys) => keys,
        Err(message) => {
            fail(&mut report, "--digest-public-keys", message);
            return Ok(report);
        }
    };
    let verifier = Verifier {
        settings,
        bucket,
        state,
        keys: &keys,
        behind,
    };
    let now = OffsetDateTime::now_utc();
    for partition in partitions {
        verifier.partition(partition, now, out, &mut report).await?;
    }
    Ok(report)
}

/// For `state show`: what verification holds for `partition`, `None` when it never ran there.
pub fn describe(state: &State, partition: &Partition) -> Result<Option<String>, StateError> {
    let Some(watch) = state.digest_watch(&partition.digest_prefix())? else {
        return Ok(None);
    };
    let watch: Watch = serde_json::from_str(&watch).unwrap_or_default();
    let hashed = state.hashed(&partition.prefix)?;
    let covered = hashed.iter().filter(|(_, covered)| *covered).count();
    Ok(Some(format!(
        "{} of the {} keys printed with a hash were listed by a verified digest; {}{}",
        covered,
        hashed.len(),
        if watch.seen {
            "digests seen"
        } else {
            "no digest seen yet"
        },
        watch
            .next_due
            .map(|due| format!(", next looked for at {due}"))
            .unwrap_or_default()
    )))
}

fn fail(report: &mut Report, object: &str, reason: String) {
    tracing::error!("{object}: {reason}; digest verification retries it next run");
    report.failed += 1;
    if report.errors.len() < ERRORS_KEPT {
        report.errors.push(ObjectError {
            key: object.to_owned(),
            reason,
        });
    }
}

/// Per digest partition, kept in the state: when the next digest is due (no listing before),
/// whether any digest was ever seen, and whether missing digests were reported.
#[derive(Debug, Default, serde::Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Watch {
    next_due: Option<String>,
    seen: bool,
    late_reported: bool,
}

impl Verifier<'_> {
    async fn partition<W: Write>(
        &self,
        partition: &Partition,
        now: OffsetDateTime,
        out: &mut W,
        report: &mut Report,
    ) -> Result<(), RunError> {
        let digest_prefix = partition.digest_prefix();
        let mut watch: Watch = self
            .state
            .digest_watch(&digest_prefix)?
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        let due = watch
            .next_due
            .as_deref()
            .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok());
        if due.is_some_and(|due| now < due) {
            return Ok(());
        }
        let Some(start) =
            crate::listing::window_start(self.state, partition, self.settings.lookback_days)?
        else {
            return Ok(()); // Nothing printed yet: nothing to check.
        };
        let start_after = partition.digest_day_folder(start);
        // A listing refused (a bucket policy may keep readers out of the digest folders) is
        // this partition's problem, reported and retried; the records were printed already.
        let listed = match self.bucket.list_after(&digest_prefix, &start_after).await {
            Ok(listed) => listed,
            Err(e) => {
                let object = format!("s3://{}/{digest_prefix}", self.bucket.name());
                fail(report, &object, e.to_string());
                return Ok(());
            }
        };
        let mut chains: BTreeMap<&str, Vec<(String, bool, &str)>> = BTreeMap::new();
        for key in listed.iter().map(|o| &o.key) {
            let Some(file) = partition.digest_file(key) else {
                continue;
            };
            if !self.state.digest_done(key)? {
                chains.entry(file.chain).or_default().push((
                    key.clone(),
                    file.backfill,
                    file.home_region,
                ));
            }
        }
        let mut settled = true;
        let mut newest_end: Option<OffsetDateTime> = None;
        for (chain, digests) in chains {
            for (key, backfill, home_region) in digests {
                let checked = self
                    .digest(partition, chain, &key, backfill, home_region)
                    .await?;
                match checked {
                    Checked::Done {
                        findings,
                        link,
                        covered,
                        matched,
                        unhashed,
                        end,
                    } => {
                        report.digests += 1;
                        report.log_files += matched;
                        report.unhashed += unhashed;
                        report.findings += findings.len() as u64;
                        status::print(out, &findings, self.settings.max_line_bytes)
                            .and_then(|()| out.flush())
                            .map_err(RunError::Output)?;
                        self.state.mark_digest_done(
                            &key,
                            link.as_ref().map(|(c, s)| (c.as_str(), s.as_str())),
                            &covered,
                        )?;
                        watch.seen = true;
                        if !covered.is_empty() {
                            watch.late_reported = false;
                        }
                        newest_end = newest_end.max(end);
                    }
                    Checked::Waiting => {
                        tracing::debug!("{key}: waits until its log files are printed");
                        settled = false;
                        break;
                    }
                    Checked::Failed(reason) => {
                        fail(
                            report,
                            &format!("s3://{}/{key}", self.bucket.name()),
                            reason,
                        );
                        settled = false;
                        break;
                    }
                }
            }
        }
        if watch.seen && !watch.late_reported {
            if let Some(event) = self.late_digest(partition, now)? {
                report.findings += 1;
                status::print(out, &[event], self.settings.max_line_bytes)
                    .and_then(|()| out.flush())
                    .map_err(RunError::Output)?;
                watch.late_reported = true;
            }
        }
        // The next digest comes an hour after the newest one's end; list again from then (at
        // once while something waits or failed).
        let next = match (settled, newest_end.or(due.map(|d| d - Duration::hours(1)))) {
            (true, Some(end)) if end + Duration::hours(1) > now => end + Duration::hours(1),
            _ => now,
        };
        watch.next_due = next.format(&Rfc3339).ok();
        self.state.set_digest_watch(
            &digest_prefix,
            &serde_json::to_string(&watch).unwrap_or_default(),
        )?;
        Ok(())
    }

    /// The finding for printed log files of hours that no digest covered within two hours, if
    /// any.
    fn late_digest(
        &self,
        partition: &Partition,
        now: OffsetDateTime,
    ) -> Result<Option<Event>, RunError> {
        let hashed = self.state.hashed(&partition.prefix)?;
        let delivered = |key: &str| {
            partition
                .log_file(key)
                .and_then(|f| crate::layout::delivery_time(f.stamp))
        };
        let hour = |t: OffsetDateTime| t.unix_timestamp().div_euclid(3600);
        // An hour counts as having its digest when any of its files was listed: another trail
        // without validation may write into the same folders, and its files never will be.
        let mut hours_with_digest = std::collections::HashSet::new();
        for (key, covered) in &hashed {
            if let (true, Some(t)) = (covered, delivered(key)) {
                hours_with_digest.insert(hour(t));
            }
        }
        let late: Vec<&String> = hashed
            .iter()
            .filter(|(key, covered)| {
                !covered
                    && delivered(key).is_some_and(|t| {
                        t + DIGEST_LATE_AFTER < now && !hours_with_digest.contains(&hour(t))
                    })
            })
            .map(|(key, _)| key)
            .collect();
        let Some(oldest) = late.first() else {
            return Ok(None);
        };
        let since = partition
            .log_file(oldest)
            .and_then(|f| crate::layout::delivery_time(f.stamp))
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_default();
        let message = format!(
            "no CloudTrail digest lists {} log files of account {} in {} delivered since {since} \
             (the oldest: {oldest}): digests come every hour while log file validation is on; \
             it may have been turned off, or the digests deleted",
            late.len(),
            partition.account,
            partition.region
        );
        Ok(Some(self.finding(
            Kind::DigestLate,
            partition,
            message,
            vec![
                ("key", json!(oldest)),
                ("since", json!(since)),
                ("logFiles", json!(late.len())),
            ],
        )))
    }

    fn finding(
        &self,
        kind: Kind,
        partition: &Partition,
        message: String,
        more: Vec<(&'static str, serde_json::Value)>,
    ) -> Event {
        tracing::error!("{message}");
        let mut details = vec![
            ("account", json!(partition.account)),
            ("region", json!(partition.region)),
        ];
        details.extend(more);
        Event {
            kind,
            bucket: self.bucket.name().to_owned(),
            prefix: self.settings.prefix.clone(),
            message,
            exit_code: crate::cli::exit::INTEGRITY,
            details,
        }
    }

    /// Checks one digest: signature, link, listed log files.
    async fn digest(
        &self,
        partition: &Partition,
        chain: &str,
        key: &str,
        backfill: bool,
        home_region: &str,
    ) -> Result<Checked, RunError> {
        let bucket = self.bucket.name();
        let (data, signature) = match self.bucket.get_signed(key).await {
            Ok(got) => got,
            Err(e) => return Ok(Checked::Failed(e.to_string())),
        };
        // The files an invalid digest lists still count as having had their digest: the
        // finding is about the digest, not (also) about a digest missing for them.
        let invalid = |reason: String, end: Option<OffsetDateTime>, covered: Vec<String>| {
            let message = format!(
                "CloudTrail digest s3://{bucket}/{key} is invalid: {reason}; the log files it \
                 lists cannot be trusted"
            );
            Checked::Done {
                findings: vec![self.finding(
                    Kind::DigestInvalid,
                    partition,
                    message,
                    vec![
                        ("digest", json!(key)),
                        ("reason", json!(reason)),
                        ("digestEndTime", json!(digest_time(partition, key))),
                    ],
                )],
                link: None,
                covered,
                matched: 0,
                unhashed: 0,
                end,
            }
        };
        let mut inflated = Vec::new();
        if let Err(e) =
            decode::open(io::Cursor::new(data)).and_then(|mut r| r.read_to_end(&mut inflated))
        {
            return Ok(invalid(format!("not gzip ({e})"), None, Vec::new()));
        }
        let document: DigestDocument = match serde_json::from_slice(&inflated) {
            Ok(document) => document,
            Err(e) => {
                return Ok(invalid(
                    format!("not a digest file ({e})"),
                    None,
                    Vec::new(),
                ))
            }
        };
        let end = OffsetDateTime::parse(&document.digest_end_time, &Rfc3339).ok();
        let listed: Vec<String> = document
            .log_files
            .iter()
            .map(|l| l.s3_object.clone())
            .collect();
        if document.digest_s3_bucket != bucket || document.digest_s3_object != key {
            return Ok(invalid(
                format!(
                    "it was moved: it names itself s3://{}/{}",
                    document.digest_s3_bucket, document.digest_s3_object
                ),
                end,
                listed,
            ));
        }
        let Some(signature) = signature else {
            return Ok(invalid(
                "it has no x-amz-meta-signature".to_owned(),
                end,
                listed,
            ));
        };
        let public_key = match self
            .keys
            .get(
                self.state,
                &document.digest_public_key_fingerprint,
                home_region,
                &document.digest_start_time,
                &document.digest_end_time,
            )
            .await
        {
            Ok(der) => der,
            Err(KeyError::State(e)) => return Err(e.into()),
            Err(KeyError::Missing(reason)) => return Ok(Checked::Failed(reason)),
        };
        if !signature_holds(&document, &inflated, &signature, &public_key) {
            return Ok(invalid(
                format!(
                    "its signature does not verify with CloudTrail's key {}",
                    document.digest_public_key_fingerprint
                ),
                end,
                listed,
            ));
        }

        let mut findings = Vec::new();
        let mut covered = Vec::new();
        if !backfill {
            let link = self.link(partition, chain, key, &document).await?;
            if link.iter().any(|event| event.kind == Kind::DigestMissing) {
                // The missing digest's files: said by that finding, not again as late.
                covered.extend(self.delivered_before(partition, &document.digest_start_time)?);
            }
            findings.extend(link);
        }
        let mut matched = 0;
        let mut unhashed = 0;
        for log in &document.log_files {
            if log.s3_bucket != bucket {
                continue;
            }
            match self.log_file(partition, key, log).await? {
                LogCheck::Matches => {
                    matched += 1;
                    covered.push(log.s3_object.clone());
                }
                LogCheck::Unhashed => unhashed += 1,
                LogCheck::Finding(event) => {
                    covered.push(log.s3_object.clone());
                    findings.push(event);
                }
                LogCheck::Waiting => return Ok(Checked::Waiting),
                LogCheck::Failed(reason) => return Ok(Checked::Failed(reason)),
            }
        }
        Ok(Checked::Done {
            findings,
            link: (!backfill).then(|| (chain.to_owned(), signature.to_ascii_lowercase())),
            covered,
            matched,
            unhashed,
            end,
        })
    }

    /// The printed keys of `partition` that no digest listed yet, delivered before `time`.
    fn delivered_before(&self, partition: &Partition, time: &str) -> Result<Vec<String>, RunError> {
        let Ok(time) = OffsetDateTime::parse(time, &Rfc3339) else {
            return Ok(Vec::new());
        };
        Ok(self
            .state
            .hashed(&partition.prefix)?
            .into_iter()
            .filter(|(_, covered)| !covered)
            .map(|(key, _)| key)
            .filter(|key| {
                partition
                    .log_file(key)
                    .and_then(|f| crate::layout::delivery_time(f.stamp))
                    .is_some_and(|t| t <= time)
            })
            .collect())
    }

    /// The findings of a digest's link to the one before it in its chain.
    async fn link(
        &self,
        partition: &Partition,
        chain: &str,
        key: &str,
        document: &DigestDocument,
    ) -> Result<Vec<Event>, RunError> {
        let bucket = self.bucket.name();
        // The first digest this state sees, or a chain CloudTrail started anew (logging or
        // validation was off for a while: that shows in the trail's own events).
        let (Some((last_key, last_signature)), Some(previous)) = (
            self.state.chain(chain)?,
            document.previous_digest_s3_object.as_deref(),
        ) else {
            return Ok(Vec::new());
        };
        if previous == last_key {
            let recorded = document
                .previous_digest_signature
                .as_deref()
                .unwrap_or("null")
                .to_ascii_lowercase();
            if recorded == last_signature {
                return Ok(Vec::new());
            }
            let message = format!(
                "CloudTrail digest chain broken at s3://{bucket}/{key}: the signature it records \
                 for the digest before it, {last_key}, is not that digest's signature (one of \
                 the two was replaced)"
            );
            return Ok(vec![self.finding(
                Kind::DigestChainBroken,
                partition,
                message,
                vec![
                    ("digest", json!(key)),
                    ("previousDigest", json!(last_key)),
                    ("digestEndTime", json!(digest_time(partition, key))),
                ],
            )]);
        }
        // Keys sort by time within a chain: a previous digest after the last one verified
        // is one this run did not find.
        if previous > last_key.as_str() {
            match self.bucket.exists(previous).await {
                Ok(true) => return Ok(Vec::new()),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!("cannot tell whether {previous} exists: {e}");
                    return Ok(Vec::new());
                }
            }
            let message = format!(
                "CloudTrail digest s3://{bucket}/{previous} is missing: the next digest, {key}, \
                 names it as its previous one; the log files of that hour cannot be verified"
            );
            return Ok(vec![self.finding(
                Kind::DigestMissing,
                partition,
                message,
                vec![
                    ("digest", json!(previous)),
                    ("nextDigest", json!(key)),
                    ("digestEndTime", json!(document.digest_start_time)),
                ],
            )]);
        }
        Ok(Vec::new())
    }

    /// Checks one log file a verified digest lists.
    async fn log_file(
        &self,
        partition: &Partition,
        digest_key: &str,
        log: &ListedLog,
    ) -> Result<LogCheck, RunError> {
        let bucket = self.bucket.name();
        let key = log.s3_object.as_str();
        let expected = log.hash_value.to_ascii_lowercase();
        let found = match self.state.printed(key)? {
            Printed::Hashed { sha256, .. } => hex::encode(sha256),
            Printed::Unhashed => return Ok(LogCheck::Unhashed),
            Printed::No if self.behind => return Ok(LogCheck::Waiting),
            Printed::No => match self.bucket.exists(key).await {
                Ok(false) => {
                    let message = format!(
                        "CloudTrail log file s3://{bucket}/{key} was deleted: digest \
                         {digest_key} lists it, the bucket no longer has it"
                    );
                    return Ok(LogCheck::Finding(self.finding(
                        Kind::LogDeleted,
                        partition,
                        message,
                        vec![
                            ("key", json!(key)),
                            ("digest", json!(digest_key)),
                            ("delivered", json!(delivered(partition, key))),
                            ("digestEndTime", json!(digest_time(partition, digest_key))),
                        ],
                    )));
                }
                Err(e) => return Ok(LogCheck::Failed(e.to_string())),
                // Outside what this collector prints (before its window) or unreadable.
                Ok(true) => match self.hash_of(key).await {
                    Ok(Some(hash)) => hash,
                    Ok(None) => "not gzip".to_owned(),
                    Err(reason) => return Ok(LogCheck::Failed(reason)),
                },
            },
        };
        if found == expected {
            return Ok(LogCheck::Matches);
        }
        let message = format!(
            "CloudTrail log file s3://{bucket}/{key} was altered: its content's SHA-256 is \
             {found}, digest {digest_key} recorded {expected}"
        );
        Ok(LogCheck::Finding(self.finding(
            Kind::LogAltered,
            partition,
            message,
            vec![
                ("key", json!(key)),
                ("digest", json!(digest_key)),
                ("sha256", json!(found)),
                ("expectedSha256", json!(expected)),
                ("delivered", json!(delivered(partition, key))),
                ("digestEndTime", json!(digest_time(partition, digest_key))),
            ],
        )))
    }

    /// Downloads a log file that was not printed and hashes its content as the pipeline
    /// would have (`None`: it cannot be read to its end).
    async fn hash_of(&self, key: &str) -> Result<Option<String>, String> {
        let data = crate::fetch::download(self.bucket, key)
            .await
            .map_err(|e| e.to_string())?;
        let Ok(reader) = decode::open(io::Cursor::new(data)) else {
            return Ok(None);
        };
        Ok(Hashing::new(reader, true).finish().map(hex::encode))
    }
}

/// When a log file was delivered (RFC 3339, from its key), empty if its key does not say.
fn delivered(partition: &Partition, key: &str) -> String {
    partition
        .log_file(key)
        .and_then(|f| crate::layout::delivery_time(f.stamp))
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// The end of the hour a digest covers (RFC 3339, from its key).
fn digest_time(partition: &Partition, key: &str) -> String {
    let Some(stamp) = partition.digest_file(key).map(|d| d.stamp) else {
        return String::new();
    };
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(stamp, &format)
        .ok()
        .and_then(|t| t.assume_utc().format(&Rfc3339).ok())
        .unwrap_or_default()
}

enum LogCheck {
    Matches,
    Unhashed,
    Finding(Event),
    Waiting,
    Failed(String),
}

/// Whether `signature` (hex) is CloudTrail's signature of the digest: RSA PKCS #1 v1.5 with
/// SHA-256 over "END_TIME\nBUCKET/KEY\nSHA256_HEX(inflated digest)\nPREVIOUS_SIGNATURE" (the
/// first digest of a chain signs "null" as its previous signature).
fn signature_holds(
    document: &DigestDocument,
    inflated: &[u8],
    signature: &str,
    public_key: &[u8],
) -> bool {
    let Ok(signature) = hex::decode(signature.trim()) else {
        return false;
    };
    let signed = signing_string(document, inflated);
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        public_key,
    )
    .verify(signed.as_bytes(), &signature)
    .is_ok()
}

fn signing_string(document: &DigestDocument, inflated: &[u8]) -> String {
    format!(
        "{}\n{}/{}\n{}\n{}",
        document.digest_end_time,
        document.digest_s3_bucket,
        document.digest_s3_object,
        hex::encode(ring::digest::digest(&ring::digest::SHA256, inflated)),
        document
            .previous_digest_signature
            .as_deref()
            .unwrap_or("null")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashing_covers_what_follows_the_last_read() {
        let text = b"{\"Records\":[]}\n\n";
        let mut hashing = Hashing::new(&text[..], true);
        let mut head = [0u8; 5];
        hashing.read_exact(&mut head).unwrap();
        let expected = ring::digest::digest(&ring::digest::SHA256, text);
        assert_eq!(hashing.finish().unwrap(), expected.as_ref());
        assert_eq!(Hashing::new(&text[..], false).finish(), None);
    }

    #[test]
    fn the_signing_string_follows_cloudtrail_s_format() {
        let document: DigestDocument = serde_json::from_str(
            r#"{"digestStartTime":"2026-11-30T09:00:00Z","digestEndTime":"2026-11-30T10:00:00Z",
                "digestS3Bucket":"b","digestS3Object":"AWSLogs/1/CloudTrail-Digest/r/x.json.gz",
                "digestPublicKeyFingerprint":"f","previousDigestSignature":null,"logFiles":[]}"#,
        )
        .unwrap();
        let hash = hex::encode(ring::digest::digest(&ring::digest::SHA256, b"abc"));
        assert_eq!(
            signing_string(&document, b"abc"),
            format!(
                "2026-11-30T10:00:00Z\nb/AWSLogs/1/CloudTrail-Digest/r/x.json.gz\n{hash}\nnull"
            )
        );
    }
}
