//! The SQS mode end to end: the real binary with `--sqs-queue-url`, against the real moto
//! server, which serves S3, SQS and SNS on one endpoint and really sends a bucket's event
//! notifications to a queue or a topic. Every message shape the mode understands is delivered
//! the way AWS delivers it (S3 notifications, SNS envelopes and raw delivery through real topic
//! subscriptions; EventBridge and CloudTrail's own notifications sent by hand), and each test
//! checks what came out on stdout against the records put, and what is left in the queue
//! against what should be: a message is deleted once all its records were printed, kept when
//! it cannot be understood, and given back at once when the line budget cuts it.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::proxy::{Fault, Proxy, Rule};
use support::*;

const A: &str = "111122223333";
const B: &str = "444455556666";

/// A bucket whose object creations S3 notifies to a queue of the same name. S3 first sends
/// its `s3:TestEvent`, which is in the queue from then on.
fn notified(name: &str) -> (Trail, Queue) {
    let trail = Trail::new(name);
    let queue = Queue::new(name);
    trail.notify_queue(&queue);
    (trail, queue)
}

/// A log file to put: its key and its records.
struct Log {
    key: String,
    records: Vec<Value>,
}

/// `objects` log files of `per_object` records each in account A's us-east-1 partition,
/// today, one minute apart from minute 0, with ids `{tag}{i}-{n}`: in delivery order.
fn logs(prefix: &str, tag: &str, objects: usize, per_object: usize) -> Vec<Log> {
    (0..objects)
        .map(|i| Log {
            key: log_key(
                prefix,
                None,
                A,
                "us-east-1",
                &day(0),
                &format!("{:02}{:02}", i / 60, i % 60),
            ),
            records: records(&format!("{tag}{i}"), per_object, A, "us-east-1"),
        })
        .collect()
}

fn put_all(trail: &Trail, logs: &[Log]) {
    for log in logs {
        trail.put_log(&log.key, &log.records);
    }
}

fn all_ids(logs: &[Log]) -> Vec<String> {
    logs.iter().flat_map(|l| ids(&l.records)).collect()
}

/// The object (the part of the id before `-`) a record id belongs to.
fn object_of(id: &str) -> &str {
    id.split('-').next().unwrap()
}

/// The ids in `printed` that belong to `log`'s object, in the order printed.
fn of_object(printed: &[String], log: &Log) -> Vec<String> {
    let object = object_of(log.records[0]["eventID"].as_str().unwrap());
    printed
        .iter()
        .filter(|id| object_of(id) == object)
        .cloned()
        .collect()
}

/// A main-job run on `queue` with `extra` flags.
fn run_sqs(trail: &Trail, queue: &Queue, extra: &[&str]) -> Run {
    let mut args = vec!["--sqs-queue-url", queue.url.as_str()];
    args.extend_from_slice(extra);
    trail.run(&args)
}

fn empty() -> QueueCounts {
    QueueCounts {
        visible: 0,
        not_visible: 0,
    }
}

/// A run that printed nothing and had nothing to say.
fn assert_idle(run: &Run, what: &str) {
    run.expect_code(0);
    assert!(
        run.lines.is_empty() && run.status.is_empty(),
        "{what}: nothing printed, got {:?} {:?}",
        run.lines,
        run.status
    );
}

/// 1. S3 event notifications from a real bucket notification configuration: one run prints
///    every record once, in delivery order, deletes every message (the test event, a digest,
///    an Insights file and a folder placeholder included: skipped), and a second run prints
///    nothing. Keys arrive URL-encoded, which a prefix with a space and a `+` puts to the test.
///    With more messages than one receive batch takes, the run goes on with the next batch:
///    every record still once, each object's in order.
#[test]
fn s3_notifications_print_every_record_once_and_leave_the_queue_empty() {
    // (bucket and queue, prefix, log files of today)
    for (name, prefix, today_objects) in [
        ("sqs-s3-events", "", 3),
        ("sqs-s3-events-prefixed", "org trail+1/", 3),
        ("sqs-s3-events-many", "", 30),
    ] {
        let (trail, queue) = notified(name);
        // Yesterday's files of another account and region sort before today's.
        let mut want_logs = Vec::new();
        for i in 0..2 {
            want_logs.push(Log {
                key: log_key(
                    prefix,
                    None,
                    B,
                    "eu-west-1",
                    &day(1),
                    &format!("23{:02}", 10 + i),
                ),
                records: records(&format!("y{i}"), 3, B, "eu-west-1"),
            });
        }
        want_logs.extend(logs(prefix, "t", today_objects, 4));
        let today = day(0);
        let stamp_day = today.replace('/', "");
        let digest = format!(
            "{prefix}AWSLogs/{A}/CloudTrail-Digest/us-east-1/{today}/{A}_CloudTrail-Digest_us-east-1_trail_us-east-1_{stamp_day}T000130Z.json.gz"
        );
        let insight = format!(
            "{prefix}AWSLogs/{A}/CloudTrail-Insight/us-east-1/{today}/{A}_CloudTrail-Insight_us-east-1_{stamp_day}T0002Z_insight.json.gz"
        );
        let folder = format!("{prefix}AWSLogs/{A}/CloudTrail/us-east-1/{today}/");
        // Yesterday's logs last, so that the notifications do not come in delivery order.
        for log in &want_logs[2..] {
            trail.put_log(&log.key, &log.records);
        }
        trail.put(
            &digest,
            gzip(br#"{"awsAccountId":"111122223333","logFiles":[]}"#),
        );
        trail.put_log(&insight, &records("insight", 2, A, "us-east-1"));
        trail.put(&folder, Vec::new());
        put_all(&trail, &want_logs[..2]);
        let messages = 1 + want_logs.len() as u64 + 3;
        assert_eq!(
            queue.counts().visible,
            messages,
            "{name}: the test event and one per object"
        );

        let mut args = vec!["--sqs-queue-url", queue.url.as_str()];
        if !prefix.is_empty() {
            args.extend(["--prefix", prefix]);
        }
        let first = trail.run(&args);
        first.expect_code(0);
        assert!(first.status.is_empty(), "{name}: {:?}", first.status);
        let printed = first.event_ids();
        if messages <= 10 {
            // One batch: sorted by delivery time across partitions.
            assert_eq!(
                printed,
                all_ids(&want_logs),
                "{name}: every record once, in delivery order; no digest or insight record"
            );
        } else {
            // Batches come in the queue's order, which SQS does not promise.
            let mut sorted = printed.clone();
            sorted.sort();
            let mut want = all_ids(&want_logs);
            want.sort();
            assert_eq!(sorted, want, "{name}: every record once, nothing else");
            for log in &want_logs {
                assert_eq!(of_object(&printed, log), ids(&log.records), "{name}");
            }
        }
        assert_eq!(queue.counts(), empty(), "{name}: every message deleted");
        assert_idle(&trail.run(&args), name);
    }
}

/// How a shape of message reaches the queue.
#[derive(Debug, Clone, Copy)]
enum Route {
    /// S3 -> SNS topic -> SQS subscription: an S3 event in an SNS envelope.
    S3ThroughSns,
    /// The same with RawMessageDelivery: the S3 event itself.
    S3ThroughRawSns,
    /// CloudTrail's own notification published to a topic the queue subscribes to.
    CloudTrailThroughSns,
    /// An EventBridge "Object Created" event, sent by hand (as an EventBridge rule would).
    EventBridge,
    /// CloudTrail's notification delivered raw: several keys, no sizes (the run HEADs them).
    CloudTrailRaw,
    /// Both S3's event notifications and CloudTrail's to one queue: each object is named by
    /// two messages, and printed once.
    S3AndCloudTrail,
}

/// 2. Every other message shape, each on its own bucket and queue: each prints its records
///    once, in delivery order, and its messages are deleted.
#[test]
fn every_notification_shape_prints_its_records_once_and_is_deleted() {
    for route in [
        Route::S3ThroughSns,
        Route::S3ThroughRawSns,
        Route::CloudTrailThroughSns,
        Route::EventBridge,
        Route::CloudTrailRaw,
        Route::S3AndCloudTrail,
    ] {
        let name = format!("sqs-shape-{route:?}").to_lowercase();
        let trail = Trail::new(&name);
        let queue = Queue::new(&name);
        let topic = match route {
            Route::S3ThroughSns | Route::S3ThroughRawSns | Route::CloudTrailThroughSns => {
                let topic = Topic::new(&name);
                topic.subscribe(&queue, matches!(route, Route::S3ThroughRawSns));
                Some(topic)
            }
            _ => None,
        };
        if let (Route::S3ThroughSns | Route::S3ThroughRawSns, Some(topic)) = (route, &topic) {
            trail.notify_topic(topic);
        }
        if let Route::S3AndCloudTrail = route {
            trail.notify_queue(&queue);
        }
        let logs = logs("", "s", 3, 5);
        // Put last first: the messages do not come in delivery order.
        for log in logs.iter().rev() {
            trail.put_log(&log.key, &log.records);
        }
        let keys: Vec<&str> = logs.iter().rev().map(|l| l.key.as_str()).collect();
        match route {
            Route::S3ThroughSns | Route::S3ThroughRawSns => {}
            Route::CloudTrailThroughSns => topic
                .as_ref()
                .unwrap()
                .publish(&json!({"s3Bucket": trail.bucket, "s3ObjectKey": keys}).to_string()),
            Route::CloudTrailRaw | Route::S3AndCloudTrail => {
                queue.send(&json!({"s3Bucket": trail.bucket, "s3ObjectKey": keys}).to_string())
            }
            Route::EventBridge => {
                for log in logs.iter().rev() {
                    let size = gzip(&log_body(&log.records)).len();
                    queue.send(
                        &json!({
                            "version": "0",
                            "id": "17793124-05d4-b198-2fde-7ededc63b103",
                            "detail-type": "Object Created",
                            "source": "aws.s3",
                            "account": A,
                            "region": "us-east-1",
                            "resources": [format!("arn:aws:s3:::{}", trail.bucket)],
                            "detail": {
                                "version": "0",
                                "bucket": {"name": trail.bucket},
                                "object": {"key": log.key, "size": size},
                                "reason": "PutObject"
                            }
                        })
                        .to_string(),
                    );
                }
            }
        }
        assert!(queue.counts().visible >= 1, "{route:?}: delivered");

        let run = run_sqs(&trail, &queue, &[]);
        run.expect_code(0);
        assert!(run.status.is_empty(), "{route:?}: {:?}", run.status);
        assert_eq!(
            run.event_ids(),
            all_ids(&logs),
            "{route:?}: every record once, in delivery order"
        );
        assert_eq!(queue.counts(), empty(), "{route:?}: every message deleted");
        assert_idle(&run_sqs(&trail, &queue, &[]), &name);
    }
}

/// 3. Messages that cannot be acknowledged (not JSON; naming another bucket) are reported:
///    exit 3 and a `partial` status event naming them. They stay in the queue, hidden for the
///    run's visibility timeout, and come back after it, reported again and still not deleted;
///    the good messages of the same run are printed and deleted.
#[test]
fn messages_that_cannot_be_acknowledged_are_reported_and_kept_the_rest_printed() {
    let (trail, queue) = notified("sqs-malformed");
    let good = logs("", "g", 3, 4);
    put_all(&trail, &good);
    queue.send("this is not JSON, sqs-malformed");
    let elsewhere = log_key("", None, A, "us-east-1", &day(0), "0500");
    queue.send(
        &json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "another-trail-bucket"},
                   "object": {"key": elsewhere, "size": 512}}}]})
        .to_string(),
    );

    let run = run_sqs(&trail, &queue, &[]);
    run.expect_code(3);
    assert_eq!(
        run.event_ids(),
        all_ids(&good),
        "the good messages are printed"
    );
    assert_eq!(run.status.len(), 1, "one status event: {:?}", run.status);
    let event = &run.status[0];
    assert_eq!(event["kind"], "partial", "{event}");
    assert_eq!(event["exitCode"], 3, "{event}");
    assert_eq!(event["failedObjects"], 2, "{event}");
    let errors = event["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{event}");
    let said = |what: &str| {
        errors.iter().any(|e| {
            e["key"].as_str().unwrap().contains(what)
                || e["reason"].as_str().unwrap().contains(what)
        })
    };
    assert!(said("not JSON"), "the message that is not JSON: {event}");
    assert!(said("another-trail-bucket"), "the other bucket: {event}");
    for line in ["not JSON", "another-trail-bucket"] {
        assert!(
            run.stderr.lines().any(|l| l.contains(line)),
            "stderr names {line}:\n{}",
            run.stderr
        );
    }
    assert_eq!(
        queue.counts(),
        QueueCounts {
            visible: 0,
            not_visible: 2
        },
        "the good messages deleted, the bad ones kept (hidden while the run's timeout lasts)"
    );

    // Once their visibility timeout passed, they come back: reported again, never deleted.
    assert_eq!(queue.let_visibility_timeouts_pass(), 2);
    let again = run_sqs(&trail, &queue, &[]);
    again.expect_code(3);
    assert!(
        again.lines.is_empty(),
        "nothing printed twice: {:?}",
        again.lines
    );
    assert_eq!(again.status.len(), 1, "{:?}", again.status);
    assert_eq!(again.status[0]["kind"], "partial");
    assert_eq!(again.status[0]["failedObjects"], 2);
    assert_eq!(
        queue.counts(),
        QueueCounts {
            visible: 0,
            not_visible: 2
        }
    );
}

/// 3b. A CloudTrail notification (no sizes: the run asks S3 for them) naming an object that
///    cannot be read, here one that is not in the bucket, is that object's failure, as it is
///    when an S3 event names it: reported (exit 3, `partial`), its message kept, and the other
///    messages of the batch printed and deleted.
///
///    (A bug once: the HEAD's 404 ended the whole run and hid the batch for 120 s.)
#[test]
fn a_notification_naming_a_missing_object_fails_that_object_only() {
    let (trail, queue) = notified("sqs-missing-object");
    let good = logs("", "h", 2, 3);
    put_all(&trail, &good);
    let missing = log_key("", None, A, "us-east-1", &day(0), "0700");
    queue.send(&json!({"s3Bucket": trail.bucket, "s3ObjectKey": [missing]}).to_string());

    let run = run_sqs(&trail, &queue, &[]);
    assert_eq!(
        run.event_ids(),
        all_ids(&good),
        "the readable objects are printed"
    );
    run.expect_code(3);
    assert_eq!(run.status.len(), 1, "{:?}", run.status);
    let event = &run.status[0];
    assert_eq!(event["kind"], "partial", "{event}");
    assert_eq!(event["failedObjects"], 1, "{event}");
    assert!(
        event["errors"][0]["key"]
            .as_str()
            .unwrap()
            .ends_with(&missing),
        "{event}"
    );
    assert_eq!(
        queue.counts(),
        QueueCounts {
            visible: 0,
            not_visible: 1
        },
        "the good messages deleted, the one naming the missing object kept"
    );
}

/// 3c. `--dry-run` prints what the next run would print, once, and changes nothing: every
///    message is still in the queue, visible at once, for the real run that follows.
///
///    (A bug once: a dry run gave messages back at once and printed them again and again.)
#[test]
fn a_dry_run_prints_each_record_once_and_leaves_every_message() {
    let (trail, queue) = notified("sqs-dry-run");
    let logs = logs("", "d", 2, 3);
    put_all(&trail, &logs);
    // A budget well above the 6 records, which the loop described above would fill.
    let dry = run_sqs(&trail, &queue, &["--dry-run", "--max-lines", "60"]);
    dry.expect_code(0);
    assert_eq!(dry.event_ids(), all_ids(&logs), "each record once");
    assert!(dry.status.is_empty(), "{:?}", dry.status);
    assert_eq!(
        queue.counts(),
        QueueCounts {
            visible: 3,
            not_visible: 0
        },
        "nothing deleted, nothing left hidden: the test event and both objects' messages"
    );
    let real = run_sqs(&trail, &queue, &[]);
    real.expect_code(0);
    assert_eq!(real.event_ids(), all_ids(&logs), "the real run prints them");
    assert_eq!(queue.counts(), empty());
}

/// 4. A line budget smaller than the records of several objects: a run stops inside an
///    object and gives its message back at once (nothing stays hidden between runs, so the
///    very next run goes on with it), the next runs resume inside it, and over all runs every
///    record comes out exactly once, in order. A run that ends the queue says nothing; one
///    that leaves objects says `behind` with how many.
///
///    (A bug once: a budget ending exactly at the last object said `behind` with 0 left; the
///    second row covers it.)
#[test]
fn a_line_budget_stops_inside_objects_and_the_next_runs_resume_there() {
    // (objects, records each, --max-lines): cuts inside objects; cuts on object ends only.
    for (objects, per_object, max_lines) in [(4usize, 7usize, 5usize), (4, 5, 10)] {
        let name = format!("sqs-budget-{per_object}-{max_lines}");
        let (trail, queue) = notified(&name);
        let logs = logs("", "b", objects, per_object);
        put_all(&trail, &logs);
        let want = all_ids(&logs);
        let budget = max_lines.to_string();

        let mut printed: Vec<String> = Vec::new();
        let mut runs = 0;
        while printed.len() < want.len() {
            runs += 1;
            assert!(runs <= want.len(), "{name}: no progress: {printed:?}");
            let started = Instant::now();
            let run = run_sqs(&trail, &queue, &["--max-lines", &budget]);
            run.expect_code(0);
            let ids = run.event_ids();
            assert_eq!(
                ids.len(),
                max_lines.min(want.len() - printed.len()),
                "{name}: run {runs} prints up to its budget at once"
            );
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{name}: run {runs} took {:?}",
                started.elapsed()
            );
            printed.extend(ids);
            let objects_left = logs
                .iter()
                .filter(|l| !ids_all_in(&l.records, &printed))
                .count() as u64;
            assert_eq!(
                queue.counts(),
                QueueCounts {
                    visible: objects_left,
                    not_visible: 0
                },
                "{name}: after run {runs}, the messages of the objects left are visible at once"
            );
            if objects_left > 0 {
                assert_eq!(run.status.len(), 1, "{name}: {:?}", run.status);
                assert_eq!(run.status[0]["kind"], "behind", "{name}");
                assert_eq!(run.status[0]["pendingObjects"], objects_left, "{name}");
            } else {
                assert!(
                    run.status.is_empty(),
                    "{name}: run {runs} emptied the queue, nothing is behind: {:?}",
                    run.status
                );
            }
        }
        // Every record exactly once, each object's in order (and the objects in order).
        assert_eq!(printed, want, "{name}");
        for log in &logs {
            assert_eq!(of_object(&printed, log), ids(&log.records), "{name}");
        }
        assert_eq!(queue.counts(), empty(), "{name}");
        assert_idle(&run_sqs(&trail, &queue, &["--max-lines", &budget]), &name);
    }
}

fn ids_all_in(records: &[Value], printed: &[String]) -> bool {
    ids(records).iter().all(|id| printed.contains(id))
}

/// What one agent's run printed, and whether it was killed.
struct AgentRun {
    agent: usize,
    killed: bool,
    ids: Vec<String>,
}

/// One run of an agent with its own state; when `kill` is set, it is killed (SIGKILL) that
/// long after its first line.
fn agent_run(mut cmd: Command, agent: usize, kill: Option<Duration>, log: &Path) -> AgentRun {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (first_line, printed) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut out = Vec::new();
        while reader.read_until(b'\n', &mut out).unwrap() > 0 {
            let _ = first_line.send(());
        }
        out
    });
    if let Some(pause) = kill {
        if printed.recv_timeout(Duration::from_secs(10)).is_ok() {
            std::thread::sleep(pause);
            let _ = child.kill(); // SIGKILL
        }
    }
    let status = child.wait().unwrap();
    let out = reader.join().unwrap();
    let killed = status.code().is_none();
    assert!(
        killed || status.success(),
        "agent {agent}: {status}\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
    let run = Run::of_killed(&out);
    AgentRun {
        agent,
        killed,
        ids: run.event_ids(),
    }
}

/// 5. Three agents (each with its own state) share one queue while new objects keep coming,
///    and runs are killed with SIGKILL at random moments. Rounds of three concurrent runs go
///    on until the queue is drained. Every record comes out; a record comes out more than
///    once only for an object that a killed run had printed lines of (its messages were not
///    deleted, so another agent got them again), at most once more per such killed run.
///
///    A killed run's messages stay hidden for the run's visibility timeout (120 s); between
///    rounds, when no run is alive, the test lets that time pass at once. A run that ended by
///    itself never leaves a message hidden.
#[test]
fn three_agents_share_a_queue_through_kill_9_and_lose_nothing() {
    const AGENTS: usize = 3;
    const MAX_KILLS: usize = 5;
    let started = Instant::now();
    let (trail, queue) = notified("sqs-agents");
    let logs = logs("", "w", 60, 8);
    let want: BTreeSet<String> = all_ids(&logs).into_iter().collect();
    let proxy = Proxy::start(&server().endpoint);
    // Slow downloads, two at a time: a run takes long enough to be killed in the middle.
    proxy.add(Rule::new(Fault::Delay(Duration::from_millis(100))).gets());
    let states: Vec<tempfile::TempDir> =
        (0..AGENTS).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let initial_seed = seed;
    let mut runs: Vec<AgentRun> = Vec::new();
    let mut kills = 0;
    let mut rounds = 0;
    std::thread::scope(|scope| {
        // CloudTrail delivers files in bursts (one per account and region every 5 minutes).
        let writer = scope.spawn(|| {
            for burst in logs.chunks(6) {
                put_all(&trail, burst);
                std::thread::sleep(Duration::from_millis(700));
            }
        });
        loop {
            rounds += 1;
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "not drained after {rounds} rounds (seed {initial_seed})"
            );
            let all_written = writer.is_finished();
            // One agent per round is to be killed, while kills are wanted.
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let victim = (kills < MAX_KILLS).then_some(rounds % AGENTS);
            let pause = Duration::from_millis(seed % 200);
            let round: Vec<AgentRun> = states
                .iter()
                .enumerate()
                .map(|(agent, state)| {
                    let mut cmd = Command::new(BIN);
                    cmd.args(["--bucket", &trail.bucket, "--endpoint-url", &proxy.endpoint])
                        .args(["--sqs-queue-url", &queue.url])
                        .args(["--max-rate", "0", "--concurrency", "2"])
                        .arg("--state")
                        .arg(state.path().join("state"));
                    test_env(&mut cmd);
                    let log = state.path().join(format!("stderr-{rounds}"));
                    let kill = (victim == Some(agent)).then_some(pause);
                    scope.spawn(move || agent_run(cmd, agent, kill, &log))
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|handle| handle.join().unwrap())
                .collect();
            let killed_now = round.iter().filter(|r| r.killed).count();
            kills += killed_now;
            runs.extend(round);
            let counts = queue.counts();
            if killed_now == 0 {
                assert_eq!(
                    counts.not_visible, 0,
                    "runs that ended by themselves leave no message hidden (seed {initial_seed})"
                );
            }
            if all_written && counts == empty() {
                break;
            }
            queue.let_visibility_timeouts_pass();
        }
    });
    assert!(
        kills >= 2,
        "runs were killed mid-way: {kills} (seed {initial_seed})"
    );

    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for run in &runs {
        let mine: BTreeSet<&String> = run.ids.iter().collect();
        assert_eq!(
            mine.len(),
            run.ids.len(),
            "agent {}: one run prints a record once (seed {initial_seed})",
            run.agent
        );
        for id in &run.ids {
            *count.entry(id).or_default() += 1;
        }
    }
    let printed: BTreeSet<String> = count.keys().map(|id| id.to_string()).collect();
    let lost: Vec<&String> = want.difference(&printed).collect();
    let unknown: Vec<&String> = printed.difference(&want).collect();
    assert!(
        lost.is_empty() && unknown.is_empty(),
        "every record, nothing else: {} lost {lost:?}, unknown {unknown:?} (seed {initial_seed})",
        lost.len()
    );
    // The objects each killed run printed lines of.
    let mut killed_printers: BTreeMap<&str, usize> = BTreeMap::new();
    for run in runs.iter().filter(|r| r.killed) {
        let objects: BTreeSet<&str> = run.ids.iter().map(|id| object_of(id)).collect();
        for object in objects {
            *killed_printers.entry(object).or_default() += 1;
        }
    }
    let mut duplicated = 0;
    for (id, n) in &count {
        let allowed = 1 + killed_printers.get(object_of(id)).copied().unwrap_or(0);
        assert!(
            *n <= allowed,
            "{id} printed {n} times, but only {} killed runs had printed lines of its object \
             (seed {initial_seed})",
            allowed - 1
        );
        duplicated += n - 1;
    }
    eprintln!(
        "{} runs in {rounds} rounds, {kills} killed, {duplicated} records printed again, {:?}",
        runs.len(),
        started.elapsed()
    );
}

/// 6. An idle run costs one SQS receive and no S3 request at all, and ends quickly.
#[test]
fn an_idle_run_makes_one_receive_request_and_none_to_s3() {
    let (trail, queue) = notified("sqs-idle");
    let logs = logs("", "i", 2, 3);
    put_all(&trail, &logs);
    let proxy = Proxy::start(&server().endpoint);
    let args = ["--sqs-queue-url", queue.url.as_str()];
    let busy = trail.run_at(&proxy.endpoint, &args);
    busy.expect_code(0);
    assert_eq!(busy.event_ids(), all_ids(&logs));
    let log = proxy.take_log();
    let of_bucket = format!("/{}", trail.bucket);
    assert!(
        log.iter().any(|r| r.target.starts_with(&of_bucket)),
        "the busy run read the objects through the proxy: {log:#?}"
    );
    assert!(
        log.iter().any(|r| r.method == "POST"),
        "and reached SQS through it (--endpoint-url): {log:#?}"
    );

    let started = Instant::now();
    let idle = trail.run_at(&proxy.endpoint, &args);
    let elapsed = started.elapsed();
    assert_idle(&idle, "idle");
    assert!(
        elapsed < Duration::from_secs(10),
        "an idle run took {elapsed:?}"
    );
    let log = proxy.take_log();
    assert_eq!(log.len(), 1, "one request: the receive: {log:#?}");
    assert_eq!(log[0].method, "POST", "an SQS call: {log:#?}");
    assert!(
        !log[0].target.starts_with(&of_bucket),
        "no S3 request: {log:#?}"
    );
}

/// 7. A queue that does not exist: the run fails, exit 1, with one `failed` status event,
///    reason `queue_missing`, and prints no record.
#[test]
fn a_missing_queue_fails_the_run_with_one_status_event() {
    let trail = Trail::new("sqs-no-queue");
    put_all(&trail, &logs("", "m", 1, 2));
    let url = format!("{}/123456789012/sqs-no-such-queue", server().endpoint);
    let run = trail.run(&["--sqs-queue-url", &url]);
    run.expect_code(1);
    assert!(run.lines.is_empty(), "no records: {:?}", run.lines);
    assert_eq!(run.status.len(), 1, "one status event: {:?}", run.status);
    let event = &run.status[0];
    let keys = members(event);
    assert_eq!(
        keys,
        ["kind", "bucket", "prefix", "message", "exitCode", "reason"],
        "{event}"
    );
    assert_eq!(event["kind"], "failed", "{event}");
    assert_eq!(event["reason"], "queue_missing", "{event}");
    assert_eq!(event["exitCode"], 1, "{event}");
    assert_eq!(event["bucket"], trail.bucket.as_str(), "{event}");
    let message = event["message"].as_str().unwrap();
    assert!(
        message.contains(&url),
        "the message names the queue: {message}"
    );
    assert!(
        run.stderr.contains(message),
        "the message is stderr's: {message}\n{}",
        run.stderr
    );
}
