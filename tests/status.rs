//! Status events, end to end: the real binary against the real S3 server (moto), directly or
//! through the fault proxy. Under the agent, stderr and the exit code reach nobody, so each
//! way a run can go wrong must put exactly one status line on stdout, with the documented
//! members; recovery is said once; `--no-status-events` silences them; `--max-rate` paces a
//! run without losing or repeating a record.
//!
//! Each status line seen here is also written to `target/tmp/status-lines/`, and compared
//! with the line of the same name in `ossec-conf/tests/status/`, which the real engines were
//! fed (see `tests/ossec_conf.rs`): same kind, same reason, same members in the same order.

mod support;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::Value;
use support::proxy::{Fault, Proxy, Rule};
use support::*;

const A: &str = "111122223333";

/// The members every status event starts with, in this order (the OSSEC decoders rely on it).
const COMMON: [&str; 5] = ["kind", "bucket", "prefix", "message", "exitCode"];

/// The run's only status event, checked for the members every event has.
fn the_status<'a>(run: &'a Run, trail: &Trail, kind: &str, exit_code: i32) -> &'a Value {
    assert_eq!(
        run.status.len(),
        1,
        "exactly one status event; stdout records {:?}, stderr:\n{}",
        run.lines,
        run.stderr
    );
    let event = &run.status[0];
    let keys = members(event);
    assert_eq!(&keys[..5], COMMON, "{event}");
    assert_eq!(event["kind"], kind, "{event}");
    assert_eq!(event["bucket"], trail.bucket.as_str(), "{event}");
    assert_eq!(event["prefix"], "", "{event}");
    assert_eq!(event["exitCode"], exit_code, "{event}");
    assert_eq!(run.code, exit_code, "stderr:\n{}", run.stderr);
    let message = event["message"].as_str().unwrap();
    assert!(!message.is_empty());
    event
}

/// A failed run's event: no records, its reason, and the very text stderr shows.
fn failed<'a>(run: &'a Run, trail: &Trail, reason: &str, exit_code: i32) -> &'a Value {
    let event = the_status(run, trail, "failed", exit_code);
    assert!(run.lines.is_empty(), "no records: {:?}", run.lines);
    assert_eq!(event["reason"], reason, "{event}");
    let message = event["message"].as_str().unwrap();
    assert!(
        run.stderr.contains(message),
        "the message is stderr's: {message}\n{}",
        run.stderr
    );
    event
}

#[test]
fn missing_credentials() {
    let trail = Trail::new("status-nocreds");
    fill(&trail, "c", 1, 2);
    let mut cmd = trail.command(&[]);
    cmd.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY");
    let run = Run::of_main_job(cmd.output().unwrap());
    failed(&run, &trail, "no_credentials", 1);
}

#[test]
fn expired_credentials() {
    let trail = Trail::new("status-expired");
    fill(&trail, "e", 1, 2);
    let proxy = Proxy::start(&server().endpoint);
    proxy.add(Rule::new(Fault::Error(
        400,
        "ExpiredToken",
        "The provided token has expired.",
    )));
    let run = trail.run_at(&proxy.endpoint, &[]);
    failed(&run, &trail, "bad_credentials", 1);
}

#[test]
fn access_denied_on_the_bucket_then_recovery_said_once() {
    let trail = Trail::new("status-denied");
    let want = fill(&trail, "d", 2, 3).1;
    let proxy = Proxy::start(&server().endpoint);
    proxy.add(Rule::new(Fault::Error(403, "AccessDenied", "Access Denied")).lists());
    let first = trail.run_at(&proxy.endpoint, &[]);
    compare_with_fixture("failed", failed(&first, &trail, "access_denied", 1));
    // Failures repeat at every run while they last.
    let second = trail.run_at(&proxy.endpoint, &[]);
    failed(&second, &trail, "access_denied", 1);

    proxy.heal();
    let third = trail.run_at(&proxy.endpoint, &[]);
    assert_eq!(third.event_ids(), want, "every record, once");
    let recovered = the_status(&third, &trail, "recovered", 0);
    assert_eq!(recovered["failedRuns"], 2, "{recovered}");
    assert!(
        recovered["lastError"]
            .as_str()
            .unwrap()
            .contains("access denied"),
        "{recovered}"
    );
    compare_with_fixture("recovered", recovered);
    // Said once.
    let fourth = trail.run_at(&proxy.endpoint, &[]);
    fourth.expect_code(0);
    assert!(fourth.lines.is_empty() && fourth.status.is_empty());
}

#[test]
fn a_missing_bucket() {
    let trail = Trail::new("status-nobucket");
    let mut cmd = Command::new(BIN);
    cmd.args(["--bucket", "no-such-trail-bucket", "--endpoint-url"])
        .arg(&server().endpoint)
        .arg("--state")
        .arg(trail.state.path().join("state"));
    test_env(&mut cmd);
    let run = Run::of_main_job(cmd.output().unwrap());
    assert_eq!(run.status.len(), 1, "{}", run.stderr);
    assert_eq!(run.status[0]["bucket"], "no-such-trail-bucket");
    assert_eq!(run.status[0]["reason"], "bucket_missing");
    assert_eq!(run.code, 1);
}

#[test]
fn s3_unreachable() {
    let trail = Trail::new("status-unreachable");
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let run = trail.run_at(&format!("http://127.0.0.1:{port}"), &[]);
    failed(&run, &trail, "unreachable", 1);
}

#[test]
fn a_busy_state() {
    let trail = Trail::new("status-busy");
    fill(&trail, "b", 1, 2);
    trail.run(&[]).expect_code(0);
    // Another run holds the state's lock.
    let lock = File::options()
        .write(true)
        .open(trail.state.path().join("state/lock"))
        .unwrap();
    lock.lock().unwrap();
    let run = trail.run(&[]);
    compare_with_fixture("failed-busy", failed(&run, &trail, "state_busy", 4));
    drop(lock);
    // A busy run is not remembered: the next good run has nothing to recover from.
    let after = trail.run(&[]);
    after.expect_code(0);
    assert!(after.status.is_empty(), "{:?}", after.status);
}

#[test]
fn a_damaged_state() {
    let trail = Trail::new("status-damaged");
    fill(&trail, "s", 1, 2);
    trail.run(&[]).expect_code(0);
    let db = trail.state.path().join("state/db");
    for entry in std::fs::read_dir(&db).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::write(&path, b"").unwrap();
        }
    }
    let run = trail.run(&[]);
    failed(&run, &trail, "state_damaged", 5);
}

#[test]
fn a_kms_denied_object_and_a_corrupt_one() {
    let trail = Trail::new("status-partial");
    let want = fill(&trail, "p", 2, 3).1;
    let denied = log_key("", None, A, "us-east-1", &day(0), "2300");
    trail.put_log(&denied, &records("kms", 2, A, "us-east-1"));
    let corrupt = log_key("", None, A, "us-east-1", &day(0), "2310");
    trail.put(&corrupt, b"this is not gzip".to_vec());
    let proxy = Proxy::start(&server().endpoint);
    proxy.add(Rule::new(Fault::KmsDenied).gets().on_key(&denied));
    let run = trail.run_at(&proxy.endpoint, &[]);
    assert_eq!(run.event_ids(), want, "the readable objects are printed");
    let event = the_status(&run, &trail, "partial", 3);
    assert_eq!(event["failedObjects"], 2, "{event}");
    let errors = event["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{event}");
    assert!(errors[0]["key"].as_str().unwrap().ends_with(&denied));
    assert!(errors[0]["reason"]
        .as_str()
        .unwrap()
        .contains("access denied"));
    assert!(errors[1]["key"].as_str().unwrap().ends_with(&corrupt));
    compare_with_fixture("partial", event);
}

#[test]
fn a_budget_that_leaves_work_says_how_much_and_how_old() {
    let trail = Trail::new("status-behind");
    let want = fill(&trail, "l", 3, 5).1;
    let first = trail.run(&["--max-lines", "7"]);
    let event = the_status(&first, &trail, "behind", 0);
    assert_eq!(first.lines.len(), 7);
    assert_eq!(
        event["pendingObjects"], 2,
        "the cut object and the one after: {event}"
    );
    let lag = event["lagSeconds"].as_i64().unwrap();
    assert!((0..2 * 86_400).contains(&lag), "{event}");
    // The second object (minute 00:01 of today) is the oldest left.
    assert!(
        event["oldestPending"]
            .as_str()
            .unwrap()
            .ends_with("T00:01:00Z"),
        "{event}"
    );
    compare_with_fixture("behind", event);
    let second = trail.run(&["--max-lines", "7"]);
    the_status(&second, &trail, "behind", 0);
    let third = trail.run(&["--max-lines", "7"]);
    third.expect_code(0);
    assert!(third.status.is_empty(), "caught up: {:?}", third.status);
    let all: Vec<String> = [first, second, third]
        .iter()
        .flat_map(|r| r.event_ids())
        .collect();
    assert_eq!(all, want, "nothing lost or repeated");
}

#[test]
fn a_bucket_without_logs() {
    let trail = Trail::new("status-nologs");
    trail.put("notes/readme.txt", b"not a trail".to_vec());
    let run = trail.run(&[]);
    let event = the_status(&run, &trail, "no_logs", 0);
    assert!(
        event["message"].as_str().unwrap().contains("notes/"),
        "{event}"
    );
    compare_with_fixture("no-logs", event);
}

#[test]
fn no_status_events_when_switched_off() {
    let trail = Trail::new("status-off");
    let proxy = Proxy::start(&server().endpoint);
    proxy.add(Rule::new(Fault::Error(
        403,
        "AccessDenied",
        "Access Denied",
    )));
    let run = trail.run_at(&proxy.endpoint, &["--no-status-events"]);
    run.expect_code(1);
    assert!(run.lines.is_empty() && run.status.is_empty());
    assert!(run.stderr.contains("access denied"), "{}", run.stderr);
}

#[test]
fn status_lines_fit_a_small_line_limit() {
    let trail = Trail::new("status-small");
    for i in 0..3 {
        let key = log_key("", None, A, "us-east-1", &day(0), &format!("22{i:02}"));
        trail.put(&key, b"broken".to_vec());
    }
    let run = trail.run(&["--max-line-bytes", "1024"]);
    the_status(&run, &trail, "partial", 3);
    let line = serde_json::json!({ "ossecCloudtrail": run.status[0] }).to_string();
    assert!(line.len() <= 1024, "{} bytes", line.len());
}

/// Reads a running collector's stdout, noting when each record line arrived.
fn timed_lines(mut cmd: Command) -> (Vec<(Instant, String)>, i32) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let reader = BufReader::new(child.stdout.take().unwrap());
    let lines: Vec<(Instant, String)> = reader
        .lines()
        .map(|l| (Instant::now(), l.unwrap()))
        .filter(|(_, l)| status_event(l).is_none())
        .collect();
    let code = child.wait().unwrap().code().unwrap_or(-1);
    (lines, code)
}

#[test]
fn max_rate_paces_a_run_and_loses_or_repeats_nothing() {
    let trail = Trail::new("status-rate");
    let want = fill(&trail, "r", 4, 750).1;
    let rate = 1000.0;
    let (lines, code) = timed_lines(trail.command(&["--max-rate", "1000", "--max-lines", "2500"]));
    assert_eq!(code, 0);
    assert_eq!(lines.len(), 2500);
    let elapsed = lines.last().unwrap().0 - lines[0].0;
    let measured = (lines.len() - 1) as f64 / elapsed.as_secs_f64();
    assert!(
        (measured - rate).abs() <= rate * 0.1,
        "measured {measured:.0} lines/s for {rate} asked"
    );
    // The rest, in a second run: every record once across both.
    let (rest, code) = timed_lines(trail.command(&["--max-rate", "1000", "--max-lines", "2500"]));
    assert_eq!(code, 0);
    let ids: Vec<String> = lines
        .iter()
        .chain(&rest)
        .map(|(_, l)| {
            serde_json::from_str::<Value>(l).unwrap()["eventID"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids, want);
}

#[test]
fn state_show_tells_the_last_runs_even_when_the_database_is_damaged() {
    let trail = Trail::new("status-show");
    fill(&trail, "h", 3, 4);
    let proxy = Proxy::start(&server().endpoint);
    proxy.add(Rule::new(Fault::Error(403, "AccessDenied", "Access Denied")).lists());
    trail.run_at(&proxy.endpoint, &[]).expect_code(1);
    proxy.heal();
    trail
        .run_at(&proxy.endpoint, &["--max-lines", "5"])
        .expect_code(0);
    let show = trail.sub(&["state", "show"], &[]);
    show.expect_code(0);
    let out = show.lines.join("\n");
    let behind = out
        .find("behind    exit 0  5 lines from 1 objects")
        .expect(&out);
    let failed = out
        .find("failed    exit 1  0 lines from 0 objects")
        .expect(&out);
    assert!(behind < failed, "newest first:\n{out}");
    assert!(
        out.contains("2 objects left (the oldest delivered"),
        "{out}"
    );
    assert!(
        out.contains("first error: access denied on s3://status-show/"),
        "{out}"
    );

    // The database damaged: the runs are still there to tell why.
    for entry in std::fs::read_dir(trail.state.path().join("state/db")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::write(&path, b"").unwrap();
        }
    }
    trail.run(&[]).expect_code(5);
    let show = trail.sub(&["state", "show"], &[]);
    show.expect_code(5);
    let out = show.lines.join("\n");
    assert!(out.contains("failed    exit 5"), "{out}");
    assert!(out.contains("cannot be read"), "{out}");
}
