//! `--validate-digests`, end to end: the real binary against the real S3 server (moto), on
//! trails whose digest files the tests write and sign themselves, following CloudTrail's
//! documented format ("CloudTrail digest file structure", "Custom implementations of
//! CloudTrail log file integrity validation"): an RSA key made here, digests listing each log
//! file with the SHA-256 of its uncompressed content, chained by the previous digest's
//! signature, each signed (SHA256withRSA, hex in `x-amz-meta-signature`) over
//! "END\nBUCKET/KEY\nSHA256(digest)\nPREVIOUS_SIGNATURE".
//!
//! A valid trail gives no finding; each kind of tampering gives exactly one, once. Each
//! finding line is also compared with the fixture the real engines were fed.

mod support;

use std::sync::OnceLock;

use rsa::pkcs1::EncodeRsaPublicKey;
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::*;

const A: &str = "111122223333";
const REGION: &str = "us-east-1";
const FINGERPRINT: &str = "5d3c1bbd2a7e0f1a9b8c7d6e5f4a3b2c";

/// One RSA key for every test of this file (making one takes a moment).
fn key() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap())
}

fn other_key() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// A trail of `hours` hours yesterday, two log files an hour, and a digest for each hour.
struct Signed {
    trail: Trail,
    keys_file: tempfile::NamedTempFile,
    /// Log file keys by hour.
    logs: Vec<Vec<String>>,
    /// Digest keys by hour.
    digests: Vec<String>,
    ids: Vec<String>,
}

/// How to spoil the trail while writing it.
#[derive(Default, Clone, Copy)]
struct Spoil {
    /// Sign this hour's digest with another key.
    bad_signature: Option<usize>,
    /// This hour's digest records a wrong signature for the one before it.
    wrong_link: Option<usize>,
    /// No digest for the last hours, from this one on.
    digests_until: Option<usize>,
}

fn stamp(day: &str, hour: usize) -> String {
    format!("{}T{hour:02}0000Z", day.replace('/', ""))
}

fn iso(day: &str, hour: usize) -> String {
    format!("{}T{hour:02}:00:00Z", day.replace('/', "-"))
}

fn signed_trail(name: &str, hours: usize, spoil: Spoil) -> Signed {
    let trail = Trail::new(name);
    let day = day(1);
    let mut logs = Vec::new();
    let mut ids = Vec::new();
    let mut digests = Vec::new();
    let mut previous: Option<(String, String)> = None; // key, signature
    for hour in 1..=hours {
        let mut listed = Vec::new();
        let mut keys = Vec::new();
        for minute in ["05", "35"] {
            let key = log_key("", None, A, REGION, &day, &format!("{hour:02}{minute}"));
            let records = records(&format!("{name}-{hour}-{minute}"), 3, A, REGION);
            ids.extend(support::ids(&records));
            let body = log_body(&records);
            listed.push(json!({
                "s3Bucket": trail.bucket,
                "s3Object": key,
                "hashValue": sha256_hex(&body),
                "hashAlgorithm": "SHA-256",
                "newestEventTime": iso(&day, hour),
                "oldestEventTime": iso(&day, hour),
            }));
            trail.put(&key, gzip(&body));
            keys.push(key);
        }
        logs.push(keys);
        if spoil.digests_until.is_some_and(|until| hour >= until) {
            continue;
        }
        let digest_key = format!(
            "AWSLogs/{A}/CloudTrail-Digest/{REGION}/{day}/{A}_CloudTrail-Digest_{REGION}_main_{REGION}_{}.json.gz",
            stamp(&day, hour + 1)
        );
        let mut previous_signature = previous.as_ref().map(|(_, s)| s.clone());
        if spoil.wrong_link == Some(hour) {
            previous_signature = Some(hex(&[7u8; 256]));
        }
        let document = json!({
            "awsAccountId": A,
            "digestStartTime": iso(&day, hour),
            "digestEndTime": iso(&day, hour + 1),
            "digestS3Bucket": trail.bucket,
            "digestS3Object": digest_key,
            "digestPublicKeyFingerprint": FINGERPRINT,
            "digestSignatureAlgorithm": "SHA256withRSA",
            "newestEventTime": iso(&day, hour),
            "oldestEventTime": iso(&day, hour),
            "previousDigestS3Bucket": previous.as_ref().map(|_| trail.bucket.clone()),
            "previousDigestS3Object": previous.as_ref().map(|(k, _)| k.clone()),
            "previousDigestHashValue": previous.as_ref().map(|_| "0".repeat(64)),
            "previousDigestHashAlgorithm": previous.as_ref().map(|_| "SHA-256"),
            "previousDigestSignature": previous_signature,
            "logFiles": listed,
        });
        let text = serde_json::to_vec(&document).unwrap();
        let to_sign = format!(
            "{}\n{}/{}\n{}\n{}",
            iso(&day, hour + 1),
            trail.bucket,
            digest_key,
            sha256_hex(&text),
            document["previousDigestSignature"]
                .as_str()
                .unwrap_or("null")
        );
        let signer = if spoil.bad_signature == Some(hour) {
            other_key()
        } else {
            key()
        };
        let signature = hex(&signer
            .sign(
                Pkcs1v15Sign::new::<Sha256>(),
                &Sha256::digest(to_sign.as_bytes()),
            )
            .unwrap());
        trail.put_with_metadata(
            &digest_key,
            gzip(&text),
            &[
                ("signature", &signature),
                ("signature-algorithm", "SHA256withRSA"),
            ],
        );
        // The chain goes on from what CloudTrail signed, whatever this test spoiled.
        let real_signature = hex(&key()
            .sign(
                Pkcs1v15Sign::new::<Sha256>(),
                &Sha256::digest(to_sign.as_bytes()),
            )
            .unwrap());
        previous = Some((digest_key.clone(), real_signature));
        digests.push(digest_key);
    }
    let keys_file = tempfile::NamedTempFile::new().unwrap();
    let der = key().to_public_key().to_pkcs1_der().unwrap();
    let list = json!({"PublicKeyList": [{
        "Value": aws_smithy_types::base64::encode(der.as_bytes()),
        "ValidityStartTime": "2026-01-01T00:00:00+00:00",
        "ValidityEndTime": "2027-01-01T00:00:00+00:00",
        "Fingerprint": FINGERPRINT,
    }]});
    std::fs::write(keys_file.path(), list.to_string()).unwrap();
    Signed {
        trail,
        keys_file,
        logs,
        digests,
        ids,
    }
}

impl Signed {
    fn run(&self, more: &[&str]) -> Run {
        let keys = self.keys_file.path().to_str().unwrap().to_owned();
        let mut args = vec!["--validate-digests", "--digest-public-keys", &keys];
        args.extend_from_slice(more);
        self.trail.run(&args)
    }
}

/// The run's findings, after checking that every record was printed.
fn findings<'a>(run: &'a Run, want_ids: &[String]) -> Vec<&'a Value> {
    let mut got = run.event_ids();
    got.sort();
    let mut want = want_ids.to_vec();
    want.sort();
    assert_eq!(
        got, want,
        "every record printed once; stderr:\n{}",
        run.stderr
    );
    run.status.iter().collect()
}

/// The run's one finding, of `kind`, with the members every finding has.
fn the_finding<'a>(run: &'a Run, signed: &Signed, kind: &str, want_ids: &[String]) -> &'a Value {
    let found = findings(run, want_ids);
    assert_eq!(
        found.len(),
        1,
        "one finding: {found:?}\nstderr:\n{}",
        run.stderr
    );
    let event = found[0];
    let keys = members(event);
    assert_eq!(
        &keys[..7],
        ["kind", "bucket", "prefix", "message", "exitCode", "account", "region"],
        "{event}"
    );
    assert_eq!(event["kind"], kind, "{event}");
    assert_eq!(event["bucket"], signed.trail.bucket.as_str());
    assert_eq!(event["exitCode"], 6);
    assert_eq!(event["account"], A);
    assert_eq!(event["region"], REGION);
    run.expect_code(6);
    event
}

#[test]
fn a_valid_trail_gives_no_finding_and_nothing_is_checked_twice() {
    let signed = signed_trail("digests-valid", 4, Spoil::default());
    let first = signed.run(&[]);
    first.expect_code(0);
    assert!(
        findings(&first, &signed.ids).is_empty(),
        "{:?}",
        first.status
    );
    assert!(
        first
            .stderr
            .contains("digests: 4 verified, 8 log files matched"),
        "{}",
        first.stderr
    );
    let second = signed.run(&[]);
    second.expect_code(0);
    assert!(
        second.lines.is_empty() && second.status.is_empty(),
        "{:?}",
        second.status
    );
}

#[test]
fn a_log_file_deleted_before_it_was_printed() {
    let signed = signed_trail("digests-deleted", 3, Spoil::default());
    let gone = signed.logs[1][0].clone();
    signed.trail.delete(&gone);
    let want: Vec<String> = signed
        .ids
        .iter()
        .filter(|id| !id.starts_with("digests-deleted-2-05"))
        .cloned()
        .collect();
    let run = signed.run(&[]);
    let event = the_finding(&run, &signed, "log_deleted", &want);
    assert_eq!(event["key"], gone.as_str());
    assert_eq!(event["digest"], signed.digests[1].as_str());
    compare_with_fixture("log-deleted", event);
    // Said once.
    let again = signed.run(&[]);
    assert!(again.status.is_empty(), "{:?}", again.status);
}

#[test]
fn a_log_file_altered_is_printed_and_reported() {
    let signed = signed_trail("digests-altered", 3, Spoil::default());
    let altered = signed.logs[2][1].clone();
    let forged = records("digests-altered-forged", 2, A, REGION);
    signed.trail.put_log(&altered, &forged);
    let mut want: Vec<String> = signed
        .ids
        .iter()
        .filter(|id| !id.starts_with("digests-altered-3-35"))
        .cloned()
        .collect();
    want.extend(ids(&forged));
    let run = signed.run(&[]);
    let event = the_finding(&run, &signed, "log_altered", &want);
    assert_eq!(event["key"], altered.as_str());
    assert_eq!(event["sha256"], sha256_hex(&log_body(&forged)).as_str());
    compare_with_fixture("log-altered", event);
}

#[test]
fn a_digest_removed_from_the_chain() {
    let signed = signed_trail("digests-removed", 4, Spoil::default());
    signed.trail.delete(&signed.digests[1]);
    let run = signed.run(&[]);
    let event = the_finding(&run, &signed, "digest_missing", &signed.ids);
    assert_eq!(event["digest"], signed.digests[1].as_str());
    assert_eq!(event["nextDigest"], signed.digests[2].as_str());
    compare_with_fixture("digest-missing", event);
}

#[test]
fn a_digest_with_a_bad_signature() {
    let signed = signed_trail(
        "digests-badsig",
        3,
        Spoil {
            bad_signature: Some(2),
            ..Spoil::default()
        },
    );
    let run = signed.run(&[]);
    let event = the_finding(&run, &signed, "digest_invalid", &signed.ids);
    assert_eq!(event["digest"], signed.digests[1].as_str());
    assert!(
        event["reason"].as_str().unwrap().contains("signature"),
        "{event}"
    );
    compare_with_fixture("digest-invalid", event);
}

#[test]
fn a_broken_chain() {
    let signed = signed_trail(
        "digests-chain",
        3,
        Spoil {
            wrong_link: Some(3),
            ..Spoil::default()
        },
    );
    let run = signed.run(&[]);
    let event = the_finding(&run, &signed, "digest_chain_broken", &signed.ids);
    assert_eq!(event["digest"], signed.digests[2].as_str());
    assert_eq!(event["previousDigest"], signed.digests[1].as_str());
    compare_with_fixture("digest-chain-broken", event);
}

#[test]
fn logs_without_a_digest_for_hours_are_reported_once() {
    let signed = signed_trail(
        "digests-late",
        4,
        Spoil {
            digests_until: Some(3),
            ..Spoil::default()
        },
    );
    let run = signed.run(&[]);
    let event = the_finding(&run, &signed, "digest_late", &signed.ids);
    assert_eq!(event["key"], signed.logs[2][0].as_str());
    assert_eq!(event["logFiles"], 4);
    compare_with_fixture("digest-late", event);
    let again = signed.run(&[]);
    assert!(again.status.is_empty(), "{:?}", again.status);
}

#[test]
fn a_digest_waits_for_the_files_a_budget_left_and_nothing_is_lost() {
    let signed = signed_trail("digests-budget", 3, Spoil::default());
    let mut printed = Vec::new();
    let first = signed.run(&["--max-lines", "7"]);
    assert!(
        first.status.iter().all(|e| e["kind"] == "behind"),
        "{:?}",
        first.status
    );
    printed.extend(first.event_ids());
    let second = signed.run(&[]);
    second.expect_code(0);
    assert!(second.status.is_empty(), "{:?}", second.status);
    printed.extend(second.event_ids());
    printed.sort();
    let mut want = signed.ids.clone();
    want.sort();
    assert_eq!(printed, want);
    // The first hour's files were all printed by the first run, the others by the second.
    assert!(
        first
            .stderr
            .contains("digests: 1 verified, 2 log files matched"),
        "{}",
        first.stderr
    );
    assert!(
        second
            .stderr
            .contains("digests: 2 verified, 4 log files matched"),
        "{}",
        second.stderr
    );
}

#[test]
fn a_missing_public_key_is_a_partial_run_retried_later() {
    let signed = signed_trail("digests-nokey", 2, Spoil::default());
    let empty_keys = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        empty_keys.path(),
        json!({"PublicKeyList": [{"Value": "AQID", "Fingerprint": "other"}]}).to_string(),
    )
    .unwrap();
    let keys = empty_keys.path().to_str().unwrap();
    let run = signed
        .trail
        .run(&["--validate-digests", "--digest-public-keys", keys]);
    run.expect_code(3);
    assert_eq!(run.status.len(), 1, "{:?}", run.status);
    assert_eq!(run.status[0]["kind"], "partial");
    assert!(
        run.status[0]["message"]
            .as_str()
            .unwrap()
            .contains(FINGERPRINT),
        "{}",
        run.status[0]
    );
    // With the right keys, the next run verifies what waited.
    let next = signed.run(&[]);
    next.expect_code(0);
    let kinds: Vec<&Value> = next.status.iter().map(|e| &e["kind"]).collect();
    assert_eq!(kinds, ["recovered"], "{:?}", next.status);
    assert!(
        next.stderr.contains("digests: 2 verified"),
        "{}",
        next.stderr
    );
}

#[test]
fn check_suggests_validation_when_the_trail_writes_digests() {
    let signed = signed_trail("digests-check", 1, Spoil::default());
    let run = signed.trail.sub(&["check"], &[]);
    let said = run.lines.join("\n");
    assert!(
        said.contains("the trail writes digest files") && said.contains("--validate-digests"),
        "{said}"
    );
    let plain = Trail::new("digests-check-none");
    fill(&plain, "n", 1, 1);
    let said = plain.sub(&["check"], &[]).lines.join("\n");
    assert!(said.contains("log file validation is off"), "{said}");
}

#[test]
fn validation_is_for_polling_runs() {
    let signed = signed_trail("digests-sqs", 1, Spoil::default());
    let run = signed.run(&["--sqs-queue-url", "http://127.0.0.1:1/q"]);
    run.expect_code(2);
    assert!(run.stderr.contains("--sqs-queue-url"), "{}", run.stderr);
}

#[test]
fn without_a_keys_file_the_keys_come_from_list_public_keys_and_a_refusal_says_what_to_do() {
    // moto has no ListPublicKeys: the call is made, really, and fails as a refused one would.
    let signed = signed_trail("digests-listkeys", 1, Spoil::default());
    let run = signed.trail.run(&["--validate-digests"]);
    run.expect_code(3);
    assert_eq!(run.status.len(), 1, "{:?}", run.status);
    let message = run.status[0]["message"].as_str().unwrap();
    assert!(
        message.contains("ListPublicKeys in us-east-1 failed")
            && message.contains("cloudtrail:ListPublicKeys, or give --digest-public-keys"),
        "{message}"
    );
    assert_eq!(
        run.event_ids().len(),
        signed.ids.len(),
        "records are printed all the same"
    );
}

#[test]
fn another_trail_without_validation_in_the_same_folders_is_no_finding() {
    let signed = signed_trail("digests-mixed", 3, Spoil::default());
    let day = day(1);
    let mut want = signed.ids.clone();
    for hour in 1..=3 {
        let key = log_key("", None, A, REGION, &day, &format!("{hour:02}50"));
        let records = records(&format!("digests-mixed-other-{hour}"), 2, A, REGION);
        want.extend(ids(&records));
        signed.trail.put_log(&key, &records);
    }
    let run = signed.run(&[]);
    run.expect_code(0);
    assert!(findings(&run, &want).is_empty(), "{:?}", run.status);
}

#[test]
fn digest_folders_refused_to_the_reader_make_a_partial_run_not_a_failed_one() {
    use support::proxy::{Fault, Proxy, Rule};
    let signed = signed_trail("digests-refused", 2, Spoil::default());
    let proxy = Proxy::start(&server().endpoint);
    proxy.add(
        Rule::new(Fault::Error(403, "AccessDenied", "Access Denied"))
            .lists()
            .on_key("CloudTrail-Digest"),
    );
    let keys = signed.keys_file.path().to_str().unwrap();
    let run = signed.trail.run_at(
        &proxy.endpoint,
        &["--validate-digests", "--digest-public-keys", keys],
    );
    run.expect_code(3);
    assert_eq!(
        run.event_ids().len(),
        signed.ids.len(),
        "every record printed"
    );
    assert_eq!(run.status.len(), 1, "{:?}", run.status);
    assert_eq!(run.status[0]["kind"], "partial");
    assert!(
        run.status[0]["message"]
            .as_str()
            .unwrap()
            .contains("CloudTrail-Digest"),
        "{}",
        run.status[0]
    );
}

#[test]
fn state_show_tells_what_verification_holds() {
    let signed = signed_trail("digests-show", 2, Spoil::default());
    signed.run(&[]).expect_code(0);
    let shown = signed.trail.sub(&["state", "show"], &[]).lines.join("\n");
    assert!(
        shown.contains("digests:        4 of the 4 keys printed with a hash were listed by a verified digest; digests seen"),
        "{shown}"
    );
}

#[test]
fn keys_from_list_public_keys_are_kept_in_the_state() {
    use support::proxy::{Fault, Proxy, Rule};
    let signed = signed_trail("digests-keycache", 3, Spoil::default());
    let der = key().to_public_key().to_pkcs1_der().unwrap();
    // What CloudTrail answers (JSON protocol: times in epoch seconds, the key as base64).
    let answer = json!({"PublicKeyList": [{
        "Value": aws_smithy_types::base64::encode(der.as_bytes()),
        "ValidityStartTime": 1_767_225_600,
        "ValidityEndTime": 1_798_761_600,
        "Fingerprint": FINGERPRINT,
    }]})
    .to_string();
    let proxy = Proxy::start(&server().endpoint);
    proxy.add(Rule::new(Fault::Json(Box::leak(answer.into_boxed_str()))).on_body("StartTime"));
    // The budget leaves the last hours' digests for the next run...
    let first = signed
        .trail
        .run_at(&proxy.endpoint, &["--validate-digests", "--max-lines", "7"]);
    assert!(
        first
            .stderr
            .contains("digests: 1 verified, 2 log files matched"),
        "{}",
        first.stderr
    );
    // ... which asks no one: moto refuses ListPublicKeys, the key comes from the state.
    let second = signed.trail.run(&["--validate-digests"]);
    second.expect_code(0);
    assert!(second.status.is_empty(), "{:?}", second.status);
    assert!(
        second
            .stderr
            .contains("digests: 2 verified, 4 log files matched"),
        "{}",
        second.stderr
    );
}
