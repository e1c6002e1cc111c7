//! End-to-end runs of the real binary against a real S3 server (moto) on 127.0.0.1.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::fs::{File, OpenOptions};

use serde_json::Value;
use support::*;

const A: &str = "111122223333";
const B: &str = "444455556666";
const C: &str = "777788889999";
const ORG: &str = "o-a1b2c3d4e5";

#[test]
fn first_run_prints_every_record_once_and_the_second_run_nothing() {
    let trail = Trail::new("first-run");
    let mut want = Vec::new();
    for (i, hhmm) in ["0900", "0905", "0910"].iter().enumerate() {
        let recs = records(&format!("obj{i}"), 4 + i, A, "us-east-1");
        trail.put_log(&log_key("", None, A, "us-east-1", &day(0), hhmm), &recs);
        want.extend(ids(&recs));
    }
    let first = trail.run(&[]);
    first.expect_code(0);
    assert_eq!(first.event_ids(), want, "all records, once, in key order");
    assert!(
        first.stderr.contains("15 lines from 3 objects"),
        "{}",
        first.stderr
    );

    let second = trail.run(&[]);
    second.expect_code(0);
    assert!(
        second.lines.is_empty(),
        "second run printed {:?}",
        second.lines
    );
}

#[test]
fn records_come_out_byte_for_byte_when_compact_and_small() {
    let trail = Trail::new("byte-for-byte");
    let recs = records("exact", 3, A, "us-east-1");
    trail.put_log(&log_key("", None, A, "us-east-1", &day(0), "0900"), &recs);
    let run = trail.run(&[]);
    run.expect_code(0);
    let want: Vec<String> = recs.iter().map(|r| r.to_string()).collect();
    assert_eq!(run.lines, want);
    assert!(
        run.lines[0].starts_with(r#"{"eventVersion":"1.09","userIdentity":{"#),
        "key order kept"
    );
}

#[test]
fn a_late_file_that_sorts_before_printed_keys_is_printed() {
    let trail = Trail::new("late-file");
    trail.put_log(
        &log_key("", None, A, "us-east-1", &day(1), "2350"),
        &records("y1", 2, A, "us-east-1"),
    );
    trail.put_log(
        &log_key("", None, A, "us-east-1", &day(0), "1000"),
        &records("t1", 2, A, "us-east-1"),
    );
    trail.put_log(
        &log_key("", None, A, "us-east-1", &day(0), "1010"),
        &records("t3", 2, A, "us-east-1"),
    );
    assert_eq!(trail.run(&[]).expect_code(0).lines.len(), 6);

    // Delivered late: one in today's folder between printed keys, one in yesterday's folder.
    let late_today = records("t2", 3, A, "us-east-1");
    let late_yesterday = records("y2", 1, A, "us-east-1");
    trail.put_log(
        &log_key("", None, A, "us-east-1", &day(0), "1005"),
        &late_today,
    );
    trail.put_log(
        &log_key("", None, A, "us-east-1", &day(1), "2355"),
        &late_yesterday,
    );
    let run = trail.run(&[]);
    run.expect_code(0);
    let mut want = ids(&late_yesterday);
    want.extend(ids(&late_today));
    assert_eq!(run.event_ids(), want);
    assert!(trail.run(&[]).expect_code(0).lines.is_empty());
}

#[test]
fn digests_placeholders_empty_and_foreign_files_are_skipped() {
    let trail = Trail::new("skips");
    let recs = records("real", 2, A, "us-east-1");
    trail.put_log(&log_key("", None, A, "us-east-1", &day(0), "0900"), &recs);
    let folder = format!("AWSLogs/{A}/CloudTrail/us-east-1/{}/", day(0));
    trail.put(&folder, Vec::new());
    trail.put(
        &format!("{folder}{A}_CloudTrail_us-east-1_20261123T0901Z_empty.json.gz"),
        Vec::new(),
    );
    trail.put(&format!("{folder}notes.txt"), b"not a log".to_vec());
    trail.put(
        &format!("{folder}{A}_CloudTrail_us-east-1_20261123T0902Z_plain.json"),
        b"{}".to_vec(),
    );
    trail.put_log(
        &format!("AWSLogs/{A}/CloudTrail-Digest/us-east-1/{}/{A}_CloudTrail-Digest_us-east-1_x_20261123T090000Z.json.gz", day(0)),
        &records("digest", 1, A, "us-east-1"),
    );
    trail.put_log(
        &format!("AWSLogs/{A}/CloudTrail-Insight/us-east-1/{}/{A}_CloudTrail-Insight_us-east-1_20261123T0900Z_x.json.gz", day(0)),
        &records("insight", 1, A, "us-east-1"),
    );
    trail.put_log(
        &format!(
            "AWSLogs/not-an-account/CloudTrail/us-east-1/{}/x.json.gz",
            day(0)
        ),
        &records("stray", 1, A, "us-east-1"),
    );
    let run = trail.run(&[]);
    run.expect_code(0);
    assert_eq!(run.event_ids(), ids(&recs));
}

#[test]
fn several_accounts_regions_and_an_organisation_trail() {
    let trail = Trail::new("org-trail");
    let layout = [
        (None, A, "us-east-1", "0900"),
        (None, A, "eu-west-1", "0901"),
        (Some(ORG), B, "us-east-1", "0902"),
        (Some(ORG), B, "ap-southeast-2", "0903"),
        (Some(ORG), C, "eu-west-1", "0904"),
    ];
    let mut want = Vec::new();
    for (i, (org, account, region, hhmm)) in layout.iter().enumerate() {
        let recs = records(&format!("p{i}"), 2, account, region);
        trail.put_log(&log_key("", *org, account, region, &day(0), hhmm), &recs);
        want.extend(ids(&recs));
    }
    let run = trail.run(&[]);
    run.expect_code(0);
    assert_eq!(
        run.event_ids(),
        want,
        "every partition, merged by delivery time"
    );
    assert!(run.stderr.contains("in 5 partitions"), "{}", run.stderr);
}

#[test]
fn the_prefix_before_awslogs_is_honoured() {
    let trail = Trail::new("prefixed");
    let recs = records("pre", 3, A, "us-east-1");
    trail.put_log(
        &log_key("trails/prod/", None, A, "us-east-1", &day(0), "0900"),
        &recs,
    );
    let without = trail.run(&[]);
    without.expect_code(0);
    assert!(without.lines.is_empty());
    assert!(
        without.stderr.contains("no CloudTrail logs under"),
        "{}",
        without.stderr
    );
    let with = trail.run(&["--prefix", "trails/prod"]);
    with.expect_code(0);
    assert_eq!(with.event_ids(), ids(&recs));
}

#[test]
fn max_lines_resumes_inside_objects_with_nothing_lost_or_repeated() {
    let trail = Trail::new("budget");
    let mut want = Vec::new();
    for (i, (n, hhmm)) in [(7, "0900"), (1, "0905"), (5, "0910"), (9, "0915")]
        .iter()
        .enumerate()
    {
        let region = if i % 2 == 0 { "us-east-1" } else { "eu-west-1" };
        let recs = records(&format!("b{i}"), *n, A, region);
        trail.put_log(&log_key("", None, A, region, &day(0), hhmm), &recs);
        want.extend(ids(&recs));
    }
    let mut got = Vec::new();
    for run_no in 0.. {
        assert!(run_no < 20, "the budget never drained");
        let run = trail.run(&["--max-lines", "3"]);
        run.expect_code(0);
        assert!(
            run.lines.len() <= 3,
            "run {run_no} printed {}",
            run.lines.len()
        );
        if run.lines.is_empty() {
            break;
        }
        got.extend(run.event_ids());
    }
    assert_eq!(got, want, "every record exactly once, in order");
}

#[test]
fn dry_run_prints_but_changes_nothing() {
    let trail = Trail::new("dry-run");
    let recs = records("dry", 3, A, "us-east-1");
    trail.put_log(&log_key("", None, A, "us-east-1", &day(0), "0900"), &recs);
    let state = trail.state.path().join("state");

    let dry = trail.run(&["--dry-run"]);
    dry.expect_code(0);
    assert_eq!(dry.event_ids(), ids(&recs));
    assert!(
        !state.exists(),
        "a dry run on a fresh install must not create the state"
    );

    let real = trail.run(&[]);
    assert_eq!(real.expect_code(0).event_ids(), ids(&recs));

    let more = records("dry2", 2, A, "us-east-1");
    trail.put_log(&log_key("", None, A, "us-east-1", &day(0), "0905"), &more);
    for _ in 0..2 {
        let dry = trail.run(&["--dry-run"]);
        assert_eq!(
            dry.expect_code(0).event_ids(),
            ids(&more),
            "dry runs repeat"
        );
    }
    assert_eq!(trail.run(&[]).expect_code(0).event_ids(), ids(&more));
}

#[test]
fn account_and_region_filters() {
    let trail = Trail::new("filters");
    let a_east = records("ae", 2, A, "us-east-1");
    let a_west = records("aw", 2, A, "eu-west-1");
    let b_east = records("be", 2, B, "us-east-1");
    trail.put_log(&log_key("", None, A, "us-east-1", &day(0), "0900"), &a_east);
    trail.put_log(&log_key("", None, A, "eu-west-1", &day(0), "0901"), &a_west);
    trail.put_log(
        &log_key("", Some(ORG), B, "us-east-1", &day(0), "0902"),
        &b_east,
    );

    let run = trail.run(&["--dry-run", "--accounts", B]);
    assert_eq!(run.expect_code(0).event_ids(), ids(&b_east));
    let run = trail.run(&["--dry-run", "--regions", "eu-west-1"]);
    assert_eq!(run.expect_code(0).event_ids(), ids(&a_west));
    let run = trail.run(&[
        "--dry-run",
        "--accounts",
        &format!("{A},{B}"),
        "--regions",
        "us-east-1,ap-south-1",
    ]);
    let mut want = ids(&a_east);
    want.extend(ids(&b_east));
    assert_eq!(run.expect_code(0).event_ids(), want);

    let bad = trail.run(&["--accounts", "12345"]);
    bad.expect_code(2);
    assert!(bad.stderr.contains("12 digits"), "{}", bad.stderr);
}

#[test]
fn start_date_defaults_to_yesterday_and_only_logs_after_moves_it() {
    let trail = Trail::new("start-date");
    let old = records("old", 2, A, "us-east-1");
    let yesterday = records("yday", 2, A, "us-east-1");
    trail.put_log(&log_key("", None, A, "us-east-1", &day(5), "0900"), &old);
    trail.put_log(
        &log_key("", None, A, "us-east-1", &day(1), "0900"),
        &yesterday,
    );

    let default = trail.run(&["--dry-run"]);
    assert_eq!(default.expect_code(0).event_ids(), ids(&yesterday));

    let date = time::OffsetDateTime::now_utc().date() - time::Duration::days(6);
    let run = trail.run(&["--only-logs-after", &date.to_string()]);
    let mut want = ids(&old);
    want.extend(ids(&yesterday));
    assert_eq!(run.expect_code(0).event_ids(), want);
}

#[test]
fn an_oversized_record_is_trimmed_valid_and_under_the_limit() {
    let trail = Trail::new("oversized");
    let mut big = record("big-1", "RunInstances", A, "us-east-1");
    let items: Vec<Value> = (0..100)
        .map(|i| serde_json::json!({"instanceId": format!("i-{i:017x}"), "privateDnsName": "ip-10-0-0-1.ec2.internal", "blockDeviceMapping": {"items": [{"deviceName": "/dev/xvda", "ebs": {"volumeId": format!("vol-{i:017x}"), "status": "attaching"}}]}}))
        .collect();
    big["responseElements"] = serde_json::json!({"reservationId": "r-0123456789abcdef0", "instancesSet": {"items": items}});
    big["errorCode"] = Value::from("Client.UnauthorizedOperation");
    let recs = vec![
        record("small-1", "StopInstances", A, "us-east-1"),
        big.clone(),
    ];
    trail.put_log(&log_key("", None, A, "us-east-1", &day(0), "0900"), &recs);
    assert!(big.to_string().len() > 15_000);

    let run = trail.run(&["--dry-run"]);
    run.expect_code(0);
    assert_eq!(run.event_ids(), ids(&recs));
    let line = &run.lines[1];
    assert!(
        line.len() <= 5630,
        "the default limit: {} bytes",
        line.len()
    );
    let parsed: Value = serde_json::from_str(line).unwrap();
    assert_eq!(parsed["ossecTrimmed"]["fields"][0], "responseElements");
    assert_eq!(
        parsed["responseElements"]["reservationId"],
        "r-0123456789abcdef0"
    );
    for field in [
        "eventVersion",
        "userIdentity",
        "eventTime",
        "eventSource",
        "eventName",
        "awsRegion",
        "sourceIPAddress",
        "errorCode",
        "eventID",
        "recipientAccountId",
    ] {
        assert_eq!(parsed[field], big[field], "{field} kept as it was");
    }
    assert!(line.contains(r#""errorCode":"Client.UnauthorizedOperation""#));

    let wide = trail.run(&["--dry-run", "--max-line-bytes", "65024"]);
    assert_eq!(
        wide.expect_code(0).lines[1],
        big.to_string(),
        "fits untouched in Wazuh's limit"
    );
}

#[test]
fn a_broken_object_is_reported_the_rest_printed_and_it_is_retried() {
    let trail = Trail::new("broken");
    let good1 = records("good1", 2, A, "us-east-1");
    let good2 = records("good2", 2, A, "us-east-1");
    let repaired = records("fixed", 3, A, "us-east-1");
    let truncated_key = log_key("", None, A, "us-east-1", &day(0), "0905");
    let not_json_key = log_key("", None, A, "us-east-1", &day(0), "0906");
    let no_records_key = log_key("", None, A, "us-east-1", &day(0), "0907");
    trail.put_log(&log_key("", None, A, "us-east-1", &day(0), "0900"), &good1);
    let full = gzip(&log_body(&repaired));
    trail.put(&truncated_key, full[..full.len() / 2].to_vec());
    trail.put(&not_json_key, gzip(b"<html>Access Denied</html>"));
    trail.put(
        &no_records_key,
        gzip(br#"{"digestStartTime":"2026-11-20T00:00:00Z"}"#),
    );
    trail.put_log(&log_key("", None, A, "us-east-1", &day(0), "0910"), &good2);

    let run = trail.run(&[]);
    run.expect_code(3);
    let mut want = ids(&good1);
    want.extend(ids(&good2));
    assert_eq!(run.event_ids(), want, "the good objects are printed");
    for key in [&truncated_key, &not_json_key, &no_records_key] {
        let line = run.stderr.lines().find(|l| l.contains(key.as_str()));
        let line = line.unwrap_or_else(|| panic!("{key} not reported:\n{}", run.stderr));
        assert!(line.contains("retried next run"), "{line}");
    }
    assert!(
        run.stderr.contains("no \"Records\" array"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("not a CloudTrail log"),
        "{}",
        run.stderr
    );

    let again = trail.run(&[]);
    again.expect_code(3);
    assert!(
        again.lines.is_empty(),
        "nothing printed twice: {:?}",
        again.lines
    );
    assert!(again.stderr.contains(&truncated_key));

    trail.put(&truncated_key, full);
    trail.put_log(&not_json_key, &[]);
    trail.put_log(&no_records_key, &[]);
    let fixed = trail.run(&[]);
    fixed.expect_code(0);
    assert_eq!(fixed.event_ids(), ids(&repaired), "printed once repaired");
}

#[test]
fn an_invalid_record_is_skipped_and_reported_not_the_whole_object() {
    let trail = Trail::new("bad-record");
    let key = log_key("", None, A, "us-east-1", &day(0), "0900");
    let good = records("ok", 2, A, "us-east-1");
    let body = format!(
        r#"{{"Records":[{},{{"eventID":"bad","x":tru}},{}]}}"#,
        good[0], good[1]
    );
    trail.put(&key, gzip(body.as_bytes()));
    let run = trail.run(&[]);
    run.expect_code(3);
    assert_eq!(run.event_ids(), ids(&good));
    assert!(
        run.stderr.contains(&format!("{key}: record 2 skipped")),
        "{}",
        run.stderr
    );
    let again = trail.run(&[]);
    again.expect_code(0);
    assert!(again.lines.is_empty());
}

#[test]
fn pretty_printed_and_multi_member_gzip_objects_are_read() {
    let trail = Trail::new("odd-encodings");
    let recs = records("pretty", 2, A, "us-east-1");
    let pretty = serde_json::to_vec_pretty(&serde_json::json!({"Records": recs})).unwrap();
    trail.put(
        &log_key("", None, A, "us-east-1", &day(0), "0900"),
        gzip(&pretty),
    );
    let split = records("multi", 3, A, "us-east-1");
    let body = log_body(&split);
    let mut two_members = gzip(&body[..body.len() / 2]);
    two_members.extend(gzip(&body[body.len() / 2..]));
    trail.put(
        &log_key("", None, A, "us-east-1", &day(0), "0905"),
        two_members,
    );
    let plain = records("plain", 1, A, "us-east-1");
    trail.put(
        &log_key("", None, A, "us-east-1", &day(0), "0910"),
        log_body(&plain),
    );

    let run = trail.run(&[]);
    run.expect_code(0);
    let mut want = ids(&recs);
    want.extend(ids(&split));
    want.extend(ids(&plain));
    assert_eq!(run.event_ids(), want);
    assert_eq!(
        run.lines[0],
        recs[0].to_string(),
        "pretty JSON comes out compact, in order"
    );
}

#[test]
fn a_second_run_while_one_holds_the_state_exits_at_once() {
    let trail = Trail::new("overlap");
    trail.put_log(
        &log_key("", None, A, "us-east-1", &day(0), "0900"),
        &records("o", 2, A, "us-east-1"),
    );
    assert_eq!(trail.run(&[]).expect_code(0).lines.len(), 2);
    trail.put_log(
        &log_key("", None, A, "us-east-1", &day(0), "0905"),
        &records("o2", 2, A, "us-east-1"),
    );

    let lock_path = trail.state.path().join("state/lock");
    let held: File = OpenOptions::new().write(true).open(&lock_path).unwrap();
    held.try_lock()
        .expect("the test takes the lock as a running collector would");
    let blocked = trail.run(&[]);
    blocked.expect_code(4);
    assert!(blocked.lines.is_empty());
    assert!(
        blocked.stderr.contains("another ossec-cloudtrail run"),
        "{}",
        blocked.stderr
    );
    drop(held);
    assert_eq!(
        trail.run(&[]).expect_code(0).lines.len(),
        2,
        "nothing was lost"
    );
}

#[test]
fn stdout_closed_early_loses_nothing() {
    let trail = Trail::new("closed-stdout");
    let mut want = Vec::new();
    let mut per_object = HashMap::new();
    for i in 0..6 {
        let recs = records(&format!("c{i}"), 300, A, "us-east-1");
        for id in ids(&recs) {
            per_object.insert(id, i);
        }
        trail.put_log(
            &log_key("", None, A, "us-east-1", &day(0), &format!("09{i:02}")),
            &recs,
        );
        want.extend(ids(&recs));
    }
    let (head, code, stderr) = run_and_close_after(trail.command(&[]), 1);
    assert_eq!(head.len(), 1);
    assert_eq!(
        code, 1,
        "a run that could not write must fail; stderr:\n{stderr}"
    );
    assert!(stderr.contains("cannot write to stdout"), "{stderr}");

    let rest = trail.run(&[]);
    rest.expect_code(0);
    let rest_ids = rest.event_ids();
    let all: BTreeSet<&String> = head
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            per_object
                .keys()
                .find(|k| v["eventID"] == k.as_str())
                .unwrap()
        })
        .chain(rest_ids.iter())
        .collect();
    assert_eq!(all.len(), want.len(), "every record came out");
    assert_eq!(
        rest_ids.iter().collect::<BTreeSet<_>>().len(),
        rest_ids.len(),
        "no repeats within a run"
    );
    let repeated_objects: BTreeSet<i32> = head
        .iter()
        .filter_map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            rest_ids
                .iter()
                .find(|id| v["eventID"] == id.as_str())
                .map(|id| per_object[id])
        })
        .collect();
    assert!(
        repeated_objects.len() <= 1,
        "repeats come from the object in flight only"
    );
}

#[test]
fn a_large_object_is_streamed_and_resumed_inside() {
    let trail = Trail::new("large-object");
    // Incompressible padding makes the gzip object larger than the whole-download limit.
    let recs = padded_records("L", 2_500, 2_000, A);
    let body = gzip(&log_body(&recs));
    assert!(
        body.len() > 2 * 1024 * 1024,
        "{} bytes is not large",
        body.len()
    );
    trail.put(&log_key("", None, A, "us-east-1", &day(0), "0900"), body);
    let small = records("after", 2, A, "us-east-1");
    trail.put_log(&log_key("", None, A, "us-east-1", &day(0), "0905"), &small);

    let first = trail.run(&["--max-lines", "2000"]);
    first.expect_code(0);
    assert!(first.stderr.contains("streaming it"), "{}", first.stderr);
    assert_eq!(first.lines.len(), 2000);
    let second = trail.run(&["--max-lines", "2000"]);
    second.expect_code(0);
    let mut got = first.event_ids();
    got.extend(second.event_ids());
    let mut want = ids(&recs);
    want.extend(ids(&small));
    assert_eq!(got, want);
}

#[test]
fn old_keys_are_pruned_from_the_state_and_never_printed_again() {
    let trail = Trail::new("pruning");
    let mut want = Vec::new();
    for days_ago in (0..6).rev() {
        let recs = records(&format!("d{days_ago}"), 2, A, "us-east-1");
        trail.put_log(
            &log_key("", None, A, "us-east-1", &day(days_ago), "1200"),
            &recs,
        );
        want.extend(ids(&recs));
    }
    let since = time::OffsetDateTime::now_utc().date() - time::Duration::days(7);
    let first = trail.run(&["--only-logs-after", &since.to_string(), "-v"]);
    assert_eq!(first.expect_code(0).event_ids(), want);
    // The newest key is today's: the window starts yesterday, so the four older keys go.
    assert!(
        first
            .stderr
            .contains("forgot 4 keys older than the look-back window"),
        "{}",
        first.stderr
    );
    // Later runs list from the window only and print nothing again.
    for _ in 0..3 {
        let idle = trail.run(&["-v"]);
        assert!(idle.expect_code(0).lines.is_empty(), "{:?}", idle.lines);
        assert!(
            idle.stderr.contains("0 new objects from"),
            "{}",
            idle.stderr
        );
        assert!(idle.stderr.contains("forgot 0 keys"), "{}", idle.stderr);
    }
    // A late file in the window is still caught after pruning.
    let late = records("late", 1, A, "us-east-1");
    trail.put_log(&log_key("", None, A, "us-east-1", &day(1), "2359"), &late);
    assert_eq!(trail.run(&[]).expect_code(0).event_ids(), ids(&late));
}

#[test]
fn a_damaged_state_is_a_clear_error_and_nothing_is_printed() {
    let trail = Trail::new("damaged-state");
    trail.put_log(
        &log_key("", None, A, "us-east-1", &day(0), "0900"),
        &records("s", 2, A, "us-east-1"),
    );
    assert_eq!(trail.run(&[]).expect_code(0).lines.len(), 2);
    for entry in std::fs::read_dir(trail.state.path().join("state/db")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::write(&path, b"\x00garbage").unwrap();
        }
    }
    let run = trail.run(&[]);
    run.expect_code(5);
    assert!(
        run.lines.is_empty(),
        "a damaged state must not re-print history"
    );
    assert!(run.stderr.contains("cannot be read"), "{}", run.stderr);
    assert!(
        run.stderr.contains("move that directory away"),
        "{}",
        run.stderr
    );
}

#[test]
fn records_before_a_break_are_printed_once_and_the_rest_after_repair() {
    let trail = Trail::new("mid-object-break");
    let recs: Vec<Value> = (0..3000)
        .map(|i| {
            let mut r = record(&format!("m-{i}"), "PutObject", A, "us-east-1");
            r["requestParameters"] =
                serde_json::json!({"key": format!("{i:x}-{}", i * 7919 % 104729)});
            r
        })
        .collect();
    let key = log_key("", None, A, "us-east-1", &day(0), "0900");
    let full = gzip(&log_body(&recs));
    trail.put(&key, full[..full.len() * 2 / 3].to_vec());

    let broken = trail.run(&[]);
    broken.expect_code(3);
    let head = broken.event_ids();
    assert!(
        !head.is_empty() && head.len() < recs.len(),
        "{} records before the break",
        head.len()
    );
    assert_eq!(head, ids(&recs)[..head.len()]);
    assert!(broken.stderr.contains(&key), "{}", broken.stderr);

    let still_broken = trail.run(&[]);
    still_broken.expect_code(3);
    assert!(still_broken.lines.is_empty(), "nothing printed twice");

    trail.put(&key, full);
    let repaired = trail.run(&[]);
    repaired.expect_code(0);
    let mut got = head;
    got.extend(repaired.event_ids());
    assert_eq!(got, ids(&recs), "every record exactly once");
}

#[test]
fn a_record_that_is_not_an_object_costs_only_itself() {
    let trail = Trail::new("non-object");
    let good = records("n", 3, A, "us-east-1");
    let body = format!(
        r#"{{"Records":[{},null,{},"oops",{}]}}"#,
        good[0], good[1], good[2]
    );
    let key = log_key("", None, A, "us-east-1", &day(0), "0900");
    trail.put(&key, gzip(body.as_bytes()));
    let run = trail.run(&[]);
    run.expect_code(3);
    assert_eq!(run.event_ids(), ids(&good));
    assert!(
        run.stderr.contains(&format!("{key}: record 2 skipped")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!("{key}: record 4 skipped")),
        "{}",
        run.stderr
    );
}

#[test]
fn nothing_found_says_what_the_bucket_holds() {
    let trail = Trail::new("hint");
    trail.put_log(
        &log_key("org-trail/", None, A, "us-east-1", &day(0), "0900"),
        &records("h", 1, A, "us-east-1"),
    );
    let run = trail.run(&[]);
    run.expect_code(0);
    assert!(
        run.stderr.contains("it holds: org-trail/"),
        "{}",
        run.stderr
    );
}

#[test]
fn set_up_mistakes_fail_with_advice_and_print_nothing() {
    let trail = Trail::new("setup-mistakes");
    trail.put_log(
        &log_key("", None, A, "us-east-1", &day(0), "0900"),
        &records("s", 1, A, "us-east-1"),
    );

    let mut missing = std::process::Command::new(BIN);
    missing
        .args([
            "--bucket",
            "no-such-trail-bucket",
            "--endpoint-url",
            &server().endpoint,
        ])
        .arg("--state")
        .arg(trail.state.path().join("other"));
    test_env(&mut missing);
    let run = Run::from(missing.output().unwrap());
    run.expect_code(1);
    assert!(run.lines.is_empty());
    assert!(
        run.stderr
            .contains("bucket \"no-such-trail-bucket\" does not exist"),
        "{}",
        run.stderr
    );

    let mut anonymous = trail.command(&[]);
    anonymous
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY");
    let run = Run::from(anonymous.output().unwrap());
    run.expect_code(1);
    assert!(run.lines.is_empty());
    assert!(
        run.stderr.contains("no AWS credentials found"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stderr.lines().count(),
        1,
        "one clear line: {}",
        run.stderr
    );
}
