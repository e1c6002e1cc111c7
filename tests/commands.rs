//! The everyday subcommands (check, state, ossec-conf, generate-docs), run as the real binary
//! against a real S3 server (moto) on 127.0.0.1.

mod support;

use std::fs::{self, OpenOptions};
use std::process::Command;

use aws_sdk_sqs::types::QueueAttributeName;

use support::proxy::{Fault, Proxy, Rule};
use support::*;

const A: &str = "111122223333";
const B: &str = "444455556666";
const ORG: &str = "o-a1b2c3d4e5";

fn stdout(run: &Run) -> String {
    run.lines.join("\n")
}

/// The line of `check`'s report for `step`.
fn step<'r>(run: &'r Run, step: &str) -> &'r str {
    run.lines
        .iter()
        .find(|l| l.starts_with(step))
        .unwrap_or_else(|| panic!("no {step} line in:\n{}", stdout(run)))
}

#[test]
fn check_passes_on_a_working_trail_and_names_what_it_found() {
    let trail = Trail::new("check-ok");
    trail.put_log(
        &log_key("", Some(ORG), A, "eu-west-1", &day(0), "0900"),
        &records("c", 3, A, "eu-west-1"),
    );
    trail.put_log(
        &log_key("", None, B, "us-east-1", &day(1), "2300"),
        &records("d", 2, B, "us-east-1"),
    );
    let secret = "do-not-print-this-secret-9f3a";
    let mut cmd = trail.sub_command(&["check"], &[]);
    cmd.env("AWS_SECRET_ACCESS_KEY", secret);
    let run = Run::from(cmd.output().unwrap());
    run.expect_code(0);
    let out = stdout(&run);
    assert!(step(&run, "credentials").contains("ok    found, they are arn:aws:"));
    assert!(
        step(&run, "bucket").contains("in region us-east-1"),
        "{out}"
    );
    let logs = step(&run, "logs");
    for found in [A, B, ORG, "eu-west-1", "us-east-1", "2 account(s)"] {
        assert!(logs.contains(found), "{found} missing: {logs}");
    }
    assert!(
        step(&run, "read").contains("ok    read and decompressed"),
        "{out}"
    );
    assert!(step(&run, "state").contains("is writable"), "{out}");
    assert!(out.contains("All checks passed"), "{out}");
    assert!(
        out.contains(&format!("--bucket {}", trail.bucket)) && out.contains("<localfile>"),
        "{out}"
    );
    assert!(
        !out.contains(secret) && !run.stderr.contains(secret),
        "the secret was printed"
    );
}

#[test]
fn check_without_credentials_fails_first_and_skips_what_needs_them() {
    let trail = Trail::new("check-no-credentials");
    let mut cmd = trail.sub_command(&["check"], &[]);
    cmd.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY");
    let run = Run::from(cmd.output().unwrap());
    run.expect_code(1);
    let out = stdout(&run);
    assert!(
        step(&run, "credentials").contains("FAIL  no AWS credentials found"),
        "{out}"
    );
    assert!(
        out.contains("what to do: give this user credentials"),
        "{out}"
    );
    for skipped in ["bucket", "logs", "read"] {
        assert!(step(&run, skipped).contains("skip"), "{out}");
    }
    assert!(out.contains("1 check(s) failed"), "{out}");
}

#[test]
fn check_names_a_missing_bucket() {
    let trail = Trail::new("check-missing");
    let mut cmd = Command::new(BIN);
    cmd.args(["check", "--bucket", "no-such-bucket-here", "--endpoint-url"])
        .arg(&server().endpoint)
        .arg("--state")
        .arg(trail.state.path().join("state"));
    test_env(&mut cmd);
    let run = Run::from(cmd.output().unwrap());
    run.expect_code(1);
    assert!(
        step(&run, "bucket").contains("FAIL  bucket \"no-such-bucket-here\" does not exist"),
        "{}",
        stdout(&run)
    );
    assert!(step(&run, "read").contains("skip"));
}

#[test]
fn check_names_the_region_the_bucket_is_really_in() {
    let trail = Trail::new_in_region("check-region", "eu-west-1");
    trail.put_log(
        &log_key("", None, A, "us-east-1", &day(0), "0900"),
        &records("r", 1, A, "us-east-1"),
    );
    let run = trail.sub(&["check"], &["--region", "us-east-1"]);
    run.expect_code(1);
    let out = stdout(&run);
    assert!(
        step(&run, "bucket").contains("is in region eu-west-1"),
        "{out}"
    );
    assert!(out.contains("what to do: pass --region eu-west-1"), "{out}");

    trail
        .sub(&["check"], &["--region", "eu-west-1"])
        .expect_code(0);
}

#[test]
fn check_fails_on_an_object_that_does_not_decompress() {
    let trail = Trail::new("check-corrupt");
    let key = log_key("", None, A, "us-east-1", &day(0), "0900");
    trail.put(&key, b"\x1f\x8b\x08\x00garbage, not deflate".to_vec());
    let run = trail.sub(&["check"], &[]);
    run.expect_code(1);
    let read = step(&run, "read");
    assert!(read.contains("FAIL") && read.contains(&key), "{read}");
}

#[test]
fn check_says_to_set_the_prefix_when_logs_sit_under_one() {
    let trail = Trail::new("check-prefix");
    trail.put_log(
        &log_key("trail/", None, A, "us-east-1", &day(0), "0900"),
        &records("p", 1, A, "us-east-1"),
    );
    let run = trail.sub(&["check"], &[]);
    run.expect_code(1);
    let logs = step(&run, "logs");
    assert!(
        logs.contains("FAIL") && logs.contains("it holds: trail/"),
        "{logs}"
    );
    assert!(stdout(&run).contains("set --prefix"));
    trail.sub(&["check"], &["--prefix", "trail"]).expect_code(0);
}

#[test]
fn check_reports_a_denied_object_with_the_permissions_to_grant() {
    let trail = Trail::new("check-object-refused");
    let key =
        log_key("", None, A, "us-east-1", &day(0), "0900").replace(".json.gz", "forbidden.json.gz");
    trail.put_log(&key, &records("x", 1, A, "us-east-1"));
    // S3 answers so without s3:GetObject or kms:Decrypt; moto enforces neither.
    let proxy = Proxy::start(&server().endpoint);
    proxy.add(Rule::new(Fault::KmsDenied).gets().on_key("forbidden"));
    let run = Run::from(
        trail
            .sub_command_at(&["check"], &proxy.endpoint, &[])
            .output()
            .unwrap(),
    );
    run.expect_code(1);
    let out = stdout(&run);
    assert!(
        step(&run, "logs").contains("ok"),
        "listing works through the proxy: {out}"
    );
    let read = step(&run, "read");
    assert!(
        read.contains("FAIL  access denied") && read.contains(&key),
        "{out}"
    );
    assert!(
        out.contains("s3:GetObject") && out.contains("kms:Decrypt"),
        "{out}"
    );
}

/// Creates the queue `name` with these attributes; its URL.
fn create_queue(name: &str, attributes: &[(QueueAttributeName, String)]) -> String {
    let mut create = sqs_client().create_queue().queue_name(name);
    for (attribute, value) in attributes {
        create = create.attributes(attribute.clone(), value);
    }
    block_on(create.send())
        .expect("creating the test queue")
        .queue_url
        .expect("a queue URL")
}

/// A queue with a dead-letter queue that takes a message after 5 receives, as
/// ossec-conf/README.md sets one up; the URLs of both.
fn queue_with_dead_letter(name: &str) -> (String, String) {
    let dlq = create_queue(&format!("{name}-dlq"), &[]);
    let dlq_arn = block_on(
        sqs_client()
            .get_queue_attributes()
            .queue_url(&dlq)
            .attribute_names(QueueAttributeName::QueueArn)
            .send(),
    )
    .unwrap()
    .attributes
    .unwrap()[&QueueAttributeName::QueueArn]
        .clone();
    let redrive = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"});
    let url = create_queue(
        name,
        &[
            (QueueAttributeName::RedrivePolicy, redrive.to_string()),
            (QueueAttributeName::VisibilityTimeout, "300".to_owned()),
        ],
    );
    (url, dlq_arn)
}

/// Sends the S3 event notification of a new object.
fn notify(queue_url: &str, bucket: &str, key: &str) {
    let body = serde_json::json!({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3",
        "awsRegion": "us-east-1", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": key}}}]});
    block_on(
        sqs_client()
            .send_message()
            .queue_url(queue_url)
            .message_body(body.to_string())
            .send(),
    )
    .expect("sending a notification");
}

#[test]
fn check_with_a_queue_and_its_dead_letter_queue_passes_and_takes_nothing() {
    let trail = Trail::new("check-sqs-ok");
    let key = log_key("", None, A, "us-east-1", &day(0), "0900");
    trail.put_log(&key, &records("q", 2, A, "us-east-1"));
    let (url, dlq_arn) = queue_with_dead_letter("check-sqs-ok");
    notify(&url, &trail.bucket, &key);

    let run = trail.sub(&["check"], &["--sqs-queue-url", &url]);
    run.expect_code(0);
    let out = stdout(&run);
    assert!(
        step(&run, "queue").contains("ok    ")
            && step(&run, "queue").contains("visibility timeout 300 s"),
        "{out}"
    );
    let dead_letter = step(&run, "dead-letter");
    assert!(
        dead_letter.contains("ok    ") && dead_letter.contains(&dlq_arn),
        "{out}"
    );
    let access = step(&run, "sqs access");
    assert!(
        access.contains("ok    ") && access.contains("made visible again"),
        "{out}"
    );
    assert!(step(&run, "message").contains(&key), "{out}");
    assert!(
        step(&run, "read").contains("ok    read and decompressed"),
        "{out}"
    );
    assert!(out.contains("All checks passed"), "{out}");
    let block = &out[out.find("<localfile>").expect("the block")..];
    assert!(
        block.contains(&format!("--sqs-queue-url {url}</command>")),
        "{block}"
    );

    // The message is still there, visible at once, for the first real run.
    let received = block_on(
        sqs_client()
            .receive_message()
            .queue_url(&url)
            .wait_time_seconds(0)
            .send(),
    )
    .unwrap();
    assert_eq!(received.messages.unwrap_or_default().len(), 1, "{out}");
}

#[test]
fn check_warns_about_a_queue_without_a_dead_letter_queue() {
    let trail = Trail::new("check-sqs-no-dlq");
    trail.put_log(
        &log_key("", None, A, "us-east-1", &day(0), "0900"),
        &records("n", 1, A, "us-east-1"),
    );
    let url = create_queue("check-sqs-no-dlq", &[]);
    let run = trail.sub(&["check"], &["--sqs-queue-url", &url]);
    // A note, not a failure: runs work, failed messages just never end.
    run.expect_code(0);
    let out = stdout(&run);
    let dead_letter = step(&run, "dead-letter");
    assert!(
        dead_letter.contains("note  the queue has no dead-letter queue (RedrivePolicy)")
            && dead_letter.contains("come back forever"),
        "{out}"
    );
    assert!(
        step(&run, "sqs access").contains("no message was waiting"),
        "{out}"
    );
    assert!(out.contains("All checks passed"), "{out}");
}

#[test]
fn check_fails_on_a_missing_queue() {
    let trail = Trail::new("check-sqs-missing");
    trail.put_log(
        &log_key("", None, A, "us-east-1", &day(0), "0900"),
        &records("m", 1, A, "us-east-1"),
    );
    let url = format!("{}/123456789012/no-such-queue", server().endpoint);
    let run = trail.sub(&["check"], &["--sqs-queue-url", &url]);
    run.expect_code(1);
    let out = stdout(&run);
    assert!(
        step(&run, "queue").contains(&format!("FAIL  the SQS queue {url} does not exist")),
        "{out}"
    );
    assert!(out.contains("what to do: copy the URL"), "{out}");
    for skipped in ["dead-letter", "sqs access"] {
        assert!(step(&run, skipped).contains("skip"), "{out}");
    }
    assert!(out.contains("1 check(s) failed"), "{out}");
    assert!(out.contains(&format!("--sqs-queue-url {url}")), "{out}");
}

#[test]
fn check_with_a_queue_needs_no_listing_but_the_bucket_s_region() {
    // Runs with a queue do not list the bucket: a denied listing is a note, and the object
    // read is one that a waiting message names.
    let trail = Trail::new("check-sqs-no-list");
    let key = log_key("", None, A, "us-east-1", &day(0), "0900");
    trail.put_log(&key, &records("l", 1, A, "us-east-1"));
    let (url, _) = queue_with_dead_letter("check-sqs-no-list");
    notify(&url, &trail.bucket, &key);
    let proxy = Proxy::start(&server().endpoint);
    proxy.add(Rule::new(Fault::Error(403, "AccessDenied", "Access Denied")).lists());
    let run = Run::from(
        trail
            .sub_command_at(&["check"], &proxy.endpoint, &["--sqs-queue-url", &url])
            .output()
            .unwrap(),
    );
    run.expect_code(0);
    let out = stdout(&run);
    assert!(
        step(&run, "bucket").contains("note  s3:ListBucket is denied"),
        "{out}"
    );
    let read = step(&run, "read");
    assert!(
        read.contains("ok    read and decompressed") && read.contains(&key),
        "{out}"
    );

    // Nor do they follow a bucket to another region, as polling runs do.
    let elsewhere = Trail::new_in_region("check-sqs-region", "eu-west-1");
    elsewhere.put_log(&key, &records("e", 1, A, "us-east-1"));
    let run = elsewhere.sub(&["check"], &["--sqs-queue-url", &url]);
    run.expect_code(1);
    let out = stdout(&run);
    assert!(
        step(&run, "bucket").contains("FAIL  bucket check-sqs-region is in region eu-west-1"),
        "{out}"
    );
    assert!(out.contains("what to do: pass --region eu-west-1"), "{out}");
}

#[test]
fn state_show_tells_each_partition_and_forget_prints_a_range_again() {
    let trail = Trail::new("state-forget");
    let yesterday = records("y", 2, A, "us-east-1");
    let today = records("t", 3, A, "us-east-1");
    trail.put_log(
        &log_key("", None, A, "us-east-1", &day(1), "2300"),
        &yesterday,
    );
    let newest = log_key("", None, A, "us-east-1", &day(0), "0900");
    trail.put_log(&newest, &today);
    trail.put_log(
        &log_key("", None, B, "eu-west-1", &day(0), "0900"),
        &records("b", 1, B, "eu-west-1"),
    );
    let first = trail.run(&[]);
    first.expect_code(0);
    assert_eq!(first.lines.len(), 6);
    assert!(
        !first.stderr.contains("records/s") && !first.stderr.contains('\r'),
        "no progress line when stderr is not a terminal: {}",
        first.stderr
    );

    let show = trail.sub(&["state", "show"], &[]);
    show.expect_code(0);
    let out = stdout(&show);
    assert!(
        out.contains(&format!("account {A} region us-east-1")),
        "{out}"
    );
    assert!(
        out.contains(&format!("account {B} region eu-west-1")),
        "{out}"
    );
    let file_name = newest.rsplit('/').next().unwrap();
    assert!(out.contains(file_name), "newest key missing: {out}");
    assert!(out.contains("2 keys printed"), "{out}");
    assert!(out.contains("bytes on disk"), "{out}");

    let today_date = day(0).replace('/', "-");
    let forget = trail.sub(
        &["state", "forget"],
        &["--since", &today_date, "--accounts", A],
    );
    forget.expect_code(0);
    assert!(
        stdout(&forget).contains("forgot 1 keys"),
        "{}",
        stdout(&forget)
    );
    let again = trail.run(&[]);
    again.expect_code(0);
    assert_eq!(
        again.event_ids(),
        ids(&today),
        "only account A's logs from today come again"
    );

    let none = trail.sub(
        &["state", "forget"],
        &["--since", &today_date, "--regions", "ap-south-1"],
    );
    none.expect_code(1);
    assert!(
        none.stderr
            .contains(&format!("it holds: {A}/us-east-1, {B}/eu-west-1")),
        "{}",
        none.stderr
    );
}

#[test]
fn forget_before_the_first_run_moves_the_start_back() {
    let trail = Trail::new("state-forget-back");
    let old = records("old", 2, A, "us-east-1");
    trail.put_log(&log_key("", None, A, "us-east-1", &day(5), "0900"), &old);
    trail.put_log(
        &log_key("", None, A, "us-east-1", &day(0), "0900"),
        &records("new", 1, A, "us-east-1"),
    );
    assert_eq!(trail.run(&[]).expect_code(0).lines.len(), 1);
    let since = day(6).replace('/', "-");
    trail
        .sub(&["state", "forget"], &["--since", &since])
        .expect_code(0);
    let run = trail.run(&[]);
    run.expect_code(0);
    assert_eq!(run.event_ids()[..2], ids(&old), "history from --since");
}

#[test]
fn state_prune_forgets_keys_outside_the_window_without_printing_them_again() {
    let trail = Trail::new("state-prune");
    trail.put_log(
        &log_key("", None, A, "us-east-1", &day(5), "0900"),
        &records("old", 1, A, "us-east-1"),
    );
    trail.put_log(
        &log_key("", None, A, "us-east-1", &day(0), "0900"),
        &records("new", 1, A, "us-east-1"),
    );
    let since = day(5).replace('/', "-");
    let first = trail.run(&["--only-logs-after", &since, "--lookback-days", "10"]);
    assert_eq!(first.expect_code(0).lines.len(), 2);
    assert!(stdout(&trail.sub(&["state", "show"], &[])).contains("2 keys printed"));

    let prune = trail.sub(&["state", "prune"], &[]);
    prune.expect_code(0);
    assert!(
        stdout(&prune).contains("forgot 1 keys"),
        "{}",
        stdout(&prune)
    );
    assert!(stdout(&trail.sub(&["state", "show"], &[])).contains("1 keys printed"));
    assert!(trail.run(&[]).expect_code(0).lines.is_empty());
}

#[test]
fn state_commands_on_a_new_or_busy_state() {
    let trail = Trail::new("state-busy");
    let show = trail.sub(&["state", "show"], &[]);
    show.expect_code(0);
    assert!(stdout(&show).contains("nothing remembered yet"));
    assert!(
        !trail.state.path().join("state").exists(),
        "show creates nothing"
    );

    trail.put_log(
        &log_key("", None, A, "us-east-1", &day(0), "0900"),
        &records("s", 1, A, "us-east-1"),
    );
    trail.run(&[]).expect_code(0);
    let held = OpenOptions::new()
        .write(true)
        .open(trail.state.path().join("state/lock"))
        .unwrap();
    held.try_lock().unwrap();
    let busy = trail.sub(&["state", "forget"], &["--since", "2026-01-01"]);
    busy.expect_code(4);
    assert!(
        busy.stderr.contains("another ossec-cloudtrail run"),
        "{}",
        busy.stderr
    );
}

#[test]
fn a_terminal_gets_a_progress_line_on_stderr() {
    let trail = Trail::new("progress-tty");
    for hhmm in ["0900", "0905"] {
        trail.put_log(
            &log_key("", None, A, "us-east-1", &day(0), hhmm),
            &records(hhmm, 2, A, "us-east-1"),
        );
    }
    let quote = |s: &str| format!("'{s}'");
    let state = trail.state.path().join("state");
    let inner = format!(
        "{} --bucket {} --endpoint-url {} --state {} >/dev/null",
        quote(BIN),
        trail.bucket,
        server().endpoint,
        quote(&state.display().to_string())
    );
    // util-linux `script` runs the command on a pseudo-terminal and copies what it shows.
    let mut cmd = Command::new("script");
    cmd.args(["-q", "-e", "-c", &inner, "/dev/null"]);
    test_env(&mut cmd);
    let output = cmd.output().expect("running `script` (util-linux)");
    let screen = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{screen}");
    // The line redraws at most 20 times a second, so which counts it showed varies; its
    // queue length does not.
    assert!(
        screen.contains("/2 objects, "),
        "no progress line on the terminal: {screen}"
    );
    assert!(screen.contains("4 lines from 2 objects"), "{screen}");
}

#[test]
fn ossec_conf_prints_a_block_ready_to_paste() {
    let output = Command::new(BIN)
        .args([
            "ossec-conf",
            "--bucket",
            "my-trail",
            "--prefix",
            "org logs",
            "--region",
            "eu-west-1",
            "--frequency",
            "600",
            "--regions",
            "us-east-1,eu-west-1",
            "--max-line-bytes",
            "65000",
            "--max-lines",
            "5000",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(output.stderr.is_empty());
    let text = String::from_utf8(output.stdout).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("the block is one XML element");
    let child = |name: &str| {
        doc.root_element()
            .children()
            .find(|n| n.has_tag_name(name))
            .and_then(|n| n.text())
            .unwrap_or_else(|| panic!("<{name}> missing in {text}"))
            .to_owned()
    };
    assert_eq!(doc.root_element().tag_name().name(), "localfile");
    assert_eq!(child("log_format"), "command");
    assert_eq!(child("alias"), "aws-cloudtrail");
    assert_eq!(child("frequency"), "600");
    let command = child("command");
    assert!(command.starts_with('/'), "an absolute path: {command}");
    assert!(
        command.ends_with(
            "--bucket my-trail --prefix 'org logs' --region eu-west-1 \
             --regions us-east-1,eu-west-1 --max-line-bytes 65000"
        ),
        "flags at their default (--max-lines 5000) are left out: {command}"
    );
}

#[test]
fn ossec_conf_refuses_a_dry_run_in_the_agent_command() {
    let output = Command::new(BIN)
        .args(["ossec-conf", "--bucket", "my-trail", "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--dry-run has no place"), "{stderr}");
}

#[test]
fn man_pages_and_completions_come_from_the_command_line_definitions() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .args(["generate-docs", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let man = fs::read_to_string(dir.path().join("man/ossec-cloudtrail.1")).unwrap();
    assert!(man.contains(".TH ossec-cloudtrail"), "not a man page");
    assert!(man.contains("\\-\\-bucket") && man.contains("check"));
    for page in ["check", "state", "state-forget", "ossec-conf"] {
        let path = dir.path().join(format!("man/ossec-cloudtrail-{page}.1"));
        assert!(path.exists(), "{} missing", path.display());
    }
    for (file, marker) in [
        ("ossec-cloudtrail.bash", "--endpoint-url"),
        ("_ossec-cloudtrail", "--endpoint-url"),
        ("ossec-cloudtrail.fish", "endpoint-url"),
    ] {
        let text = fs::read_to_string(dir.path().join("completions").join(file)).unwrap();
        assert!(text.contains(marker), "{file}");
    }

    let help = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    for listed in ["check", "state", "ossec-conf"] {
        assert!(
            help.contains(&format!("  {listed} ")),
            "{listed} not in --help"
        );
    }
    assert!(
        !help.contains("generate-docs"),
        "the packaging helper stays hidden"
    );
}
