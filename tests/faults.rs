//! The fault suite: the real binary against the real S3 server (moto), through a proxy that
//! injects S3 errors, broken connections, cut bodies, denied keys and redirects; plus broken
//! objects, kill -9, a closed stdout, overlapping runs and a damaged state. Each test proves
//! that every record comes out, that repeats are bounded to the object in flight, and that
//! stderr names what went wrong in one line.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

use support::proxy::{Fault, Proxy, Rule};
use support::*;

const A: &str = "111122223333";
const B: &str = "444455556666";

/// The stderr lines that mention `key`.
fn lines_naming<'a>(stderr: &'a str, key: &str) -> Vec<&'a str> {
    stderr.lines().filter(|l| l.contains(key)).collect()
}

/// The object (the part of the id before `-`) each id belongs to.
fn object_of(id: &str) -> &str {
    id.split('-').next().unwrap()
}

#[test]
fn throttling_and_server_errors_are_retried_with_every_record_printed_once() {
    let trail = Trail::new("faults-throttle");
    let (keys, want) = fill(&trail, "t", 12, 5);
    let proxy = Proxy::start(&server().endpoint);
    // A share of the downloads, a throttling burst of consecutive requests, and a listing.
    proxy
        .add(Rule::new(Fault::SlowDown).gets().every(3).times(4))
        .add(
            Rule::new(Fault::InternalError)
                .gets()
                .skip(1)
                .every(4)
                .times(2),
        )
        .add(Rule::new(Fault::SlowDown).skip(6).times(5))
        .add(Rule::new(Fault::InternalError).lists().times(1));
    let run = trail.run_at(&proxy.endpoint, &[]);
    run.expect_code(0);
    assert_eq!(run.event_ids(), want, "every record once, in order");

    let log = proxy.take_log();
    let faulted: Vec<_> = log.iter().filter(|r| r.fault.is_some()).collect();
    assert!(faulted.len() >= 8, "the faults happened: {faulted:?}");
    for request in faulted.iter().filter(|r| !r.is_list()) {
        let key = keys
            .iter()
            .find(|k| request.target.contains(k.as_str()))
            .unwrap_or_else(|| panic!("unexpected target {}", request.target));
        let said = lines_naming(&run.stderr, key);
        assert!(
            said.iter()
                .any(|l| l.contains("HTTP 503") || l.contains("HTTP 500")),
            "a retried request is named on stderr: {key}\n{}",
            run.stderr
        );
    }
    assert!(
        run.stderr.contains("retrying"),
        "retries are said as such:\n{}",
        run.stderr
    );
}

#[test]
fn a_reset_connection_and_a_body_cut_short_are_retried() {
    let trail = Trail::new("faults-broken-connections");
    let (keys, mut want) = fill(&trail, "r", 4, 6);
    // An object large enough to be streamed, cut short mid-body too.
    let large = padded_records("big", 900, 1_800, A);
    let large_body = gzip(&log_body(&large));
    assert!(large_body.len() > 1024 * 1024, "streamed: over 1 MiB");
    let large_key = log_key("", None, A, "us-east-1", &day(0), "2300");
    trail.put(&large_key, large_body);
    want.extend(ids(&large));

    let proxy = Proxy::start(&server().endpoint);
    proxy
        .add(Rule::new(Fault::Reset).gets().on_key(&keys[0]).times(2))
        .add(
            Rule::new(Fault::CutBody(200))
                .gets()
                .on_key(&keys[2])
                .times(2),
        )
        .add(
            Rule::new(Fault::CutBody(400_000))
                .gets()
                .on_key(&large_key)
                .times(1),
        );
    let run = trail.run_at(&proxy.endpoint, &["--max-line-bytes", "65024"]);
    run.expect_code(0);
    assert_eq!(run.event_ids(), want, "every record once, in order");
    assert_eq!(proxy.faults(), 5, "every fault was met");
    for key in [&keys[2], &large_key] {
        let said = lines_naming(&run.stderr, key);
        assert!(
            said.iter().any(|l| l.contains("broke off")),
            "{key}:\n{}",
            run.stderr
        );
    }
    assert!(trail.run(&[]).expect_code(0).lines.is_empty());
}

#[test]
fn broken_objects_are_reported_once_each_the_rest_printed_and_retried_until_repaired() {
    let trail = Trail::new("faults-bad-objects");
    let good = records("good", 3, A, "us-east-1");
    let later = records("later", 2, A, "us-east-1");
    let repaired = records("fixed", 4, A, "us-east-1");
    let key = |hhmm: &str| log_key("", None, A, "us-east-1", &day(0), hhmm);
    let truncated = key("0901");
    let not_json = key("0902");
    let no_records = key("0903");
    let empty_json = key("0904");
    let zero_bytes = key("0905");
    trail.put_log(&key("0900"), &good);
    let full = gzip(&log_body(&repaired));
    trail.put(&truncated, full[..full.len() - 20].to_vec());
    trail.put(&not_json, gzip(b"this is not JSON at all"));
    trail.put(&no_records, gzip(br#"{"eventVersion":"1.09"}"#));
    trail.put(&empty_json, gzip(b""));
    trail.put(&zero_bytes, Vec::new());
    trail.put_log(&key("0910"), &later);
    let broken = [&truncated, &not_json, &no_records, &empty_json];

    let proxy = Proxy::start(&server().endpoint);
    // Documented: the records before a break are printed (once), the rest after repair.
    let mut before_break = 0;
    for attempt in 0..2 {
        let run = trail.run_at(&proxy.endpoint, &[]);
        run.expect_code(3);
        if attempt == 0 {
            let printed = run.event_ids();
            before_break = printed.iter().filter(|id| object_of(id) == "fixed").count();
            assert!(before_break < repaired.len(), "{printed:?}");
            let mut want = ids(&good);
            want.extend(ids(&repaired)[..before_break].iter().cloned());
            want.extend(ids(&later));
            assert_eq!(printed, want, "the good objects are printed");
        } else {
            assert!(
                run.lines.is_empty(),
                "nothing printed twice: {:?}",
                run.lines
            );
        }
        for key in broken {
            let said = lines_naming(&run.stderr, key);
            assert_eq!(said.len(), 1, "one line for {key}:\n{}", run.stderr);
            assert!(said[0].contains("retried next run"), "{}", said[0]);
        }
        // Documented: a zero-byte object is not a log file (CloudTrail never writes one).
        assert!(lines_naming(&run.stderr, &zero_bytes).is_empty());
        assert!(run.stderr.contains("4 objects failed"), "{}", run.stderr);
    }

    trail.put(&truncated, full);
    for key in &broken[1..] {
        trail.put_log(key, &[]);
    }
    let fixed = trail.run_at(&proxy.endpoint, &[]);
    fixed.expect_code(0);
    assert_eq!(
        fixed.event_ids(),
        ids(&repaired)[before_break..],
        "the rest printed once repaired"
    );
    assert!(trail.run(&[]).expect_code(0).lines.is_empty());
}

#[test]
fn access_denied_on_one_object_is_reported_the_rest_printed_and_retried() {
    let trail = Trail::new("faults-kms-denied");
    let (keys, want) = fill(&trail, "k", 5, 3);
    let proxy = Proxy::start(&server().endpoint);
    proxy.add(Rule::new(Fault::KmsDenied).gets().on_key(&keys[2]));
    let run = trail.run_at(&proxy.endpoint, &[]);
    run.expect_code(3);
    let denied: Vec<&String> = want.iter().filter(|id| object_of(id) == "k2").collect();
    let printed = run.event_ids();
    assert_eq!(
        printed,
        want.iter()
            .filter(|id| object_of(id) != "k2")
            .cloned()
            .collect::<Vec<_>>()
    );
    let said = lines_naming(&run.stderr, &keys[2]);
    assert_eq!(said.len(), 1, "{}", run.stderr);
    assert!(said[0].contains("access denied"), "{}", said[0]);
    assert!(said[0].contains("kms:Decrypt"), "{}", said[0]);
    assert!(said[0].contains("retried next run"), "{}", said[0]);

    let still = trail.run_at(&proxy.endpoint, &[]);
    still.expect_code(3);
    assert!(still.lines.is_empty());

    proxy.heal();
    let granted = trail.run_at(&proxy.endpoint, &[]);
    granted.expect_code(0);
    assert_eq!(granted.event_ids().iter().collect::<Vec<_>>(), denied);
}

#[test]
fn a_bucket_in_another_region_is_followed_through_an_endpoint() {
    let trail = Trail::new("faults-region");
    let (_, want) = fill(&trail, "g", 2, 3);
    let proxy = Proxy::start(&server().endpoint);
    proxy.add(Rule::new(Fault::WrongRegion("eu-west-1")));
    let run = trail.run_at(&proxy.endpoint, &[]);
    run.expect_code(0);
    assert_eq!(run.event_ids(), want);
    let said: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("eu-west-1"))
        .collect();
    assert_eq!(said.len(), 1, "{}", run.stderr);
    assert!(said[0].contains("--region eu-west-1"), "{}", said[0]);
}

#[test]
fn kill_9_at_random_moments_loses_nothing_and_repeats_at_most_the_object_in_flight() {
    let trail = Trail::new("faults-kill-9");
    let (_, want) = fill(&trail, "x", 30, 40);
    let proxy = Proxy::start(&server().endpoint);
    // Slow downloads, two at a time, make a fresh run last 1.5 s or more: a kill within
    // 500 ms lands in the middle of it, and of the run after it.
    proxy.add(Rule::new(Fault::Delay(Duration::from_millis(100))).gets());
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut runs: Vec<Vec<String>> = Vec::new();
    let mut kills = 0;
    loop {
        let mut child = trail
            .command_at(&proxy.endpoint, &["--concurrency", "2"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut out = Vec::new();
            stdout.read_to_end(&mut out).unwrap();
            out
        });
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let killed = kills < 8 && {
            std::thread::sleep(Duration::from_millis(50 + seed % 450));
            child.kill().is_ok() // SIGKILL
        };
        let status = child.wait().unwrap();
        let out = reader.join().unwrap();
        let run = Run::of_killed(&out);
        runs.push(run.event_ids());
        if killed && status.code().is_none() {
            kills += 1;
        } else if status.success() {
            break;
        } else {
            panic!("run ended with {status} (seed {seed})");
        }
    }
    assert!(kills >= 2, "some runs were killed mid-way (seed {seed})");

    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for id in runs.iter().flatten() {
        *count.entry(id).or_default() += 1;
    }
    let all: BTreeSet<&str> = count.keys().copied().collect();
    assert_eq!(
        all,
        want.iter().map(String::as_str).collect(),
        "the union holds every record (seed {seed})"
    );
    // What a run printed and a later run printed again must come from one object.
    for (i, run) in runs.iter().enumerate() {
        let later: BTreeSet<&str> = runs[i + 1..].iter().flatten().map(String::as_str).collect();
        let repeated: BTreeSet<&str> = run
            .iter()
            .filter(|id| later.contains(id.as_str()))
            .map(|id| object_of(id))
            .collect();
        assert!(
            repeated.len() <= 1,
            "run {i} had objects {repeated:?} sent again (seed {seed})"
        );
    }
    assert!(trail.run(&[]).expect_code(0).lines.is_empty());
}

#[test]
fn stdout_closed_by_head_stops_the_run_and_the_state_keeps_only_what_was_written() {
    let trail = Trail::new("faults-head");
    let (_, want) = fill(&trail, "h", 8, 200);
    let cmd = trail.command(&[]);
    let program = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let mut shell = std::process::Command::new("bash");
    shell
        .arg("-c")
        .arg(r#"set -o pipefail; "$@" | head -n 1"#)
        .arg("bash")
        .arg(program)
        .args(args);
    test_env(&mut shell);
    // `command` set the environment on `cmd`, not on the shell: copy it over.
    for (name, value) in cmd.get_envs() {
        match value {
            Some(v) => shell.env(name, v),
            None => shell.env_remove(name),
        };
    }
    let piped = Run::from(shell.output().unwrap());
    assert_ne!(piped.code, 0, "the pipeline says the collector failed");
    assert_eq!(piped.lines.len(), 1);
    let said: Vec<&str> = piped
        .stderr
        .lines()
        .filter(|l| l.contains("cannot write to stdout"))
        .collect();
    assert_eq!(said.len(), 1, "{}", piped.stderr);

    let rest = trail.run(&[]);
    rest.expect_code(0);
    let head = piped.event_ids();
    let rest_ids = rest.event_ids();
    let union: BTreeSet<&String> = head.iter().chain(&rest_ids).collect();
    assert_eq!(union, want.iter().collect(), "every record came out");
    let repeated: BTreeSet<&str> = rest_ids
        .iter()
        .filter(|id| head.contains(id))
        .map(|id| object_of(id))
        .collect();
    assert!(
        repeated.len() <= 1,
        "repeats only from the object in flight"
    );
    // Objects other than the one in flight were not marked done: they all come out again.
    assert!(rest_ids.len() >= want.len() - 200, "{}", rest_ids.len());
}

#[test]
fn of_two_overlapping_runs_one_prints_and_the_other_exits_4_at_once() {
    let trail = Trail::new("faults-overlap");
    let (_, want) = fill(&trail, "o", 6, 4);
    let proxy = Proxy::start(&server().endpoint);
    // Long enough for the second run to start while the first holds the state.
    proxy.add(Rule::new(Fault::Delay(Duration::from_secs(1))).gets());
    let first = trail
        .command_at(&proxy.endpoint, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first run takes the state before its first request.
    while proxy.faults() == 0 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let second = trail.run(&[]);
    second.expect_code(4);
    assert!(second.lines.is_empty());
    assert_eq!(second.stderr.lines().count(), 1, "{}", second.stderr);
    assert!(
        second
            .stderr
            .contains("another ossec-cloudtrail run is using the state"),
        "{}",
        second.stderr
    );
    let first = Run::from(first.wait_with_output().unwrap());
    first.expect_code(0);
    assert_eq!(first.event_ids(), want);
}

#[test]
fn a_corrupt_or_unusable_state_is_a_clear_error_never_a_reprint() {
    let trail = Trail::new("faults-state");
    let (_, want) = fill(&trail, "s", 3, 2);
    assert_eq!(trail.run(&[]).expect_code(0).event_ids(), want);
    let db = trail.state.path().join("state/db");

    // Every file of the database cut to nothing.
    let saved = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&db).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, saved.path().join(path.file_name().unwrap())).unwrap();
            std::fs::write(&path, b"").unwrap();
        }
    }
    let truncated = trail.run(&[]);
    truncated.expect_code(5);
    assert!(truncated.lines.is_empty(), "history is not printed again");
    assert_eq!(truncated.stderr.lines().count(), 1, "{}", truncated.stderr);
    assert!(
        truncated.stderr.contains("move that directory away"),
        "{}",
        truncated.stderr
    );

    // The database is not a directory at all.
    std::fs::remove_dir_all(&db).unwrap();
    std::fs::write(&db, b"not a database").unwrap();
    let unusable = trail.run(&[]);
    unusable.expect_code(5);
    assert!(unusable.lines.is_empty());
    assert_eq!(unusable.stderr.lines().count(), 1, "{}", unusable.stderr);
    assert!(
        unusable.stderr.contains(&db.display().to_string()) || unusable.stderr.contains("state"),
        "{}",
        unusable.stderr
    );
}

#[test]
fn an_idle_run_lists_each_partition_once_and_downloads_nothing() {
    let trail = Trail::new("faults-idle");
    for (account, region) in [(A, "us-east-1"), (A, "eu-west-1"), (B, "us-east-1")] {
        trail.put_log(
            &log_key("", None, account, region, &day(0), "0900"),
            &records(&format!("i{account}{region}"), 2, account, region),
        );
    }
    let proxy = Proxy::start(&server().endpoint);
    assert_eq!(
        trail
            .run_at(&proxy.endpoint, &[])
            .expect_code(0)
            .lines
            .len(),
        6
    );
    proxy.take_log();
    let idle = trail.run_at(&proxy.endpoint, &[]);
    idle.expect_code(0);
    assert!(idle.lines.is_empty());
    let log = proxy.take_log();
    assert!(log.iter().all(|r| r.is_list()), "only listings: {log:?}");
    // Discovery lists folders (a delimiter listing): AWSLogs/, then each account's CloudTrail/.
    let discovery = log
        .iter()
        .filter(|r| r.target.contains("delimiter="))
        .count();
    let partition_lists = log.len() - discovery;
    assert!(partition_lists <= 3, "{log:#?}");
    assert!(discovery <= 1 + 2, "{log:#?}");
}

#[test]
fn credentials_never_reach_stdout_or_stderr_at_any_level() {
    let trail = Trail::new("faults-secrets");
    let (keys, _) = fill(&trail, "c", 3, 2);
    let proxy = Proxy::start(&server().endpoint);
    proxy
        .add(Rule::new(Fault::SlowDown).times(2))
        .add(Rule::new(Fault::KmsDenied).gets().on_key(&keys[1]));
    const KEY_ID: &str = "AKIAFAULTSUITE0KEYID";
    const SECRET: &str = "fAuLtSuItEsEcReT0123456789abcdefghijklmn";
    const TOKEN: &str = "FaultSuiteSessionToken0123456789";
    for level in ["-q", "-v", "-vv"] {
        let mut cmd = trail.command_at(&proxy.endpoint, &[level]);
        cmd.env("AWS_ACCESS_KEY_ID", KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("AWS_SESSION_TOKEN", TOKEN);
        let run = Run::from(cmd.output().unwrap());
        for secret in [SECRET, TOKEN, KEY_ID] {
            assert!(!run.stderr.contains(secret), "{level}: {secret} on stderr");
            assert!(
                !run.lines.iter().any(|l| l.contains(secret)),
                "{level}: stdout"
            );
        }
    }
    let mut cmd = trail.command_at(&proxy.endpoint, &[]);
    cmd.env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_SESSION_TOKEN", TOKEN)
        .env("RUST_LOG", "trace");
    proxy.heal();
    proxy.add(Rule::new(Fault::SlowDown).times(2));
    let run = Run::from(cmd.output().unwrap());
    assert!(!run.stderr.is_empty(), "trace logging is on");
    for secret in [SECRET, TOKEN, KEY_ID] {
        assert!(
            !run.stderr.contains(secret),
            "RUST_LOG=trace: {secret} on stderr: {}",
            run.stderr
                .lines()
                .filter(|l| l.contains(secret))
                .map(|l| l.chars().take(300).collect::<String>())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
