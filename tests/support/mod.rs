//! Test harness: a real S3 server (moto) on 127.0.0.1, started once per test binary, buckets
//! filled with real gzip CloudTrail objects through the AWS SDK, and the real binary run
//! against them.
#![allow(dead_code)]

pub mod forward_proxy;
pub mod proxy;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::{json, Value};

pub const BIN: &str = env!("CARGO_BIN_EXE_ossec-cloudtrail");

/// The moto server shared by every test of this binary.
pub struct Server {
    pub endpoint: String,
    /// Holding the pipe keeps the server alive; it dies with this process.
    _guard: Mutex<Child>,
}

pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(start_moto)
}

fn moto_path() -> PathBuf {
    if let Some(path) = std::env::var_os("MOTO_SERVER") {
        return PathBuf::from(path);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-s3/bin/moto_server")
}

fn start_moto() -> Server {
    let moto = moto_path();
    assert!(
        moto.exists(),
        "the tests need a local S3 server, and {} is missing: run `bash scripts/setup-s3.sh` \
         (or the README's test command, `bash scripts/test.sh`, which does it)",
        moto.display()
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The shell kills moto when our end of its stdin closes, i.e. when this process exits,
    // however it exits.
    let child = Command::new("sh")
        .arg("-c")
        .arg(r#""$0" -H 127.0.0.1 -p "$1" >/dev/null 2>&1 </dev/null & pid=$!; read _ignored; kill $pid"#)
        .arg(&moto)
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .spawn()
        .expect("starting moto_server");
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "moto_server did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Server {
        endpoint: format!("http://127.0.0.1:{port}"),
        _guard: Mutex::new(child),
    }
}

pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// A bucket of its own for one test, and a state directory for its runs.
pub struct Trail {
    pub bucket: String,
    pub state: tempfile::TempDir,
    client: aws_sdk_s3::Client,
}

impl Trail {
    pub fn new(name: &str) -> Trail {
        Trail::new_in_region(name, "us-east-1")
    }

    /// A bucket created in `region` (S3 tells its region on HeadBucket).
    pub fn new_in_region(name: &str, region: &str) -> Trail {
        let server = server();
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&server.endpoint)
            .force_path_style(true)
            .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
            .http_client(
                aws_smithy_http_client::Builder::new()
                    .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                        aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                    ))
                    .build_https(),
            )
            .build();
        let client = aws_sdk_s3::Client::from_conf(config);
        let bucket = name.replace('_', "-");
        let mut create = client.create_bucket().bucket(&bucket);
        if region != "us-east-1" {
            create = create.create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(region.into())
                    .build(),
            );
        }
        runtime()
            .block_on(create.send())
            .expect("creating the test bucket");
        Trail {
            bucket,
            state: tempfile::tempdir().unwrap(),
            client,
        }
    }

    pub fn put(&self, key: &str, body: Vec<u8>) {
        runtime()
            .block_on(
                self.client
                    .put_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .body(ByteStream::from(body))
                    .send(),
            )
            .unwrap_or_else(|e| panic!("putting {key}: {e:?}"));
    }

    /// Puts an object with user metadata (`x-amz-meta-NAME`).
    pub fn put_with_metadata(&self, key: &str, body: Vec<u8>, metadata: &[(&str, &str)]) {
        let mut put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body));
        for (name, value) in metadata {
            put = put.metadata(*name, *value);
        }
        runtime()
            .block_on(put.send())
            .unwrap_or_else(|e| panic!("putting {key}: {e:?}"));
    }

    pub fn delete(&self, key: &str) {
        runtime()
            .block_on(
                self.client
                    .delete_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("deleting {key}: {e:?}"));
    }

    /// Puts a gzip CloudTrail log file holding `records`.
    pub fn put_log(&self, key: &str, records: &[Value]) {
        self.put(key, gzip(&log_body(records)));
    }

    /// Runs the collector on this trail with `args` added.
    pub fn run(&self, args: &[&str]) -> Run {
        let output = self
            .command(args)
            .output()
            .expect("running ossec-cloudtrail");
        Run::of_main_job(output)
    }

    /// `ossec-cloudtrail SUBCOMMAND... --bucket B --endpoint-url E --state S ARGS...`, run.
    pub fn sub(&self, subcommand: &[&str], args: &[&str]) -> Run {
        Run::from(
            self.sub_command(subcommand, args)
                .output()
                .expect("running ossec-cloudtrail"),
        )
    }

    /// The collector's command line for this trail, not yet started.
    pub fn command(&self, args: &[&str]) -> Command {
        self.sub_command(&[], args)
    }

    /// Runs the collector on this trail through another endpoint (a fault proxy).
    pub fn run_at(&self, endpoint: &str, args: &[&str]) -> Run {
        let output = self
            .command_at(endpoint, args)
            .output()
            .expect("running ossec-cloudtrail");
        Run::of_main_job(output)
    }

    /// The collector's command line for this trail through `endpoint`, not yet started.
    pub fn command_at(&self, endpoint: &str, args: &[&str]) -> Command {
        self.sub_command_at(&[], endpoint, args)
    }

    /// A subcommand's command line for this trail, not yet started.
    pub fn sub_command(&self, subcommand: &[&str], args: &[&str]) -> Command {
        self.sub_command_at(subcommand, &server().endpoint, args)
    }

    /// A subcommand's command line for this trail through `endpoint`, not yet started.
    pub fn sub_command_at(&self, subcommand: &[&str], endpoint: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(subcommand)
            .args(["--bucket", &self.bucket, "--endpoint-url", endpoint])
            .arg("--state")
            .arg(self.state.path().join("state"))
            .args(args);
        // The main job paces its lines for the agent by default; tests that are not about
        // pacing want them at once.
        if subcommand.is_empty() && !args.contains(&"--max-rate") {
            cmd.args(["--max-rate", "0"]);
        }
        test_env(&mut cmd);
        cmd
    }
}

/// The environment of every run: static test credentials, no instance metadata lookups, and
/// no inherited AWS or proxy settings from the machine running the tests (a proxy there would
/// take the requests meant for the local server).
pub fn test_env(cmd: &mut Command) {
    for (name, _) in std::env::vars_os() {
        let name_text = name.to_string_lossy();
        if name_text.starts_with("AWS_") || name_text.to_ascii_lowercase().ends_with("_proxy") {
            cmd.env_remove(name);
        }
    }
    cmd.env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("RUST_LOG");
}

/// What one run printed.
pub struct Run {
    pub code: i32,
    /// The record lines of stdout, in order.
    pub lines: Vec<String>,
    /// The status events of stdout (the `ossecCloudtrail` member of each), in order.
    pub status: Vec<Value>,
    pub stderr: String,
}

/// The member names of a status event, in order (the OSSEC decoders rely on the order).
pub fn members(event: &Value) -> Vec<&str> {
    event
        .as_object()
        .expect("a status event is an object")
        .keys()
        .map(String::as_str)
        .collect()
}

/// Whether a stdout line is one of the collector's status events, and if so its content.
pub fn status_event(line: &str) -> Option<Value> {
    let value: Value = serde_json::from_str(line).ok()?;
    let object = value.as_object()?;
    (object.len() == 1).then(|| object.get("ossecCloudtrail").cloned())?
}

impl From<Output> for Run {
    fn from(output: Output) -> Run {
        let stdout = String::from_utf8(output.stdout).expect("stdout is UTF-8");
        let mut lines = Vec::new();
        let mut status = Vec::new();
        for line in stdout.lines() {
            match status_event(line) {
                Some(event) => status.push(event),
                None => lines.push(line.to_owned()),
            }
        }
        Run {
            code: output.status.code().unwrap_or(-1),
            lines,
            status,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    /// What a run of the main job printed, checked for what OSSEC and Wazuh cannot take:
    /// an empty or blank line (measured: it becomes an empty event).
    pub fn of_main_job(output: Output) -> Run {
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            !stdout.lines().any(|l| l.trim().is_empty()),
            "an empty line on stdout:\n{stdout}"
        );
        Run::from(output)
    }

    /// The record lines a run that may have been killed wrote: a line cut by the kill is not
    /// a line (OSSEC never sees it), and status events are left out.
    pub fn of_killed(out: &[u8]) -> Run {
        let complete = &out[..out.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1)];
        let stdout = String::from_utf8(complete.to_vec()).expect("stdout is UTF-8");
        Run {
            code: 0,
            lines: stdout
                .lines()
                .filter(|l| status_event(l).is_none())
                .map(str::to_owned)
                .collect(),
            status: Vec::new(),
            stderr: String::new(),
        }
    }

    /// Asserts the exit code, showing stderr when it is not the expected one.
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(self.code, code, "exit code; stderr:\n{}", self.stderr);
        self
    }

    /// The eventID of each line, checking on the way that every stdout line is one JSON object.
    pub fn event_ids(&self) -> Vec<String> {
        self.lines
            .iter()
            .map(|line| {
                let value: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
                value["eventID"]
                    .as_str()
                    .unwrap_or_else(|| panic!("line without eventID: {line}"))
                    .to_owned()
            })
            .collect()
    }
}

/// Reads the first `n` lines of a running collector, then closes its stdout, as `| head -n N`
/// does.
pub fn run_and_close_after(mut cmd: Command, n: usize) -> (Vec<String>, i32, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    {
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        for _ in 0..n {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 {
                break;
            }
            lines.push(line.trim_end().to_owned());
        }
    }
    let output = child.wait_with_output().unwrap();
    (
        lines,
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Writes a status line where the rule pack's check finds it (`target/tmp/status-lines/`),
/// and compares it with the fixture of the same name in `ossec-conf/tests/status/`, which
/// the real engines were fed: same members in the same order, same kind and reason.
pub fn compare_with_fixture(name: &str, event: &Value) {
    let line = serde_json::json!({ "ossecCloudtrail": event }).to_string();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-lines");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.txt")), format!("{line}\n")).unwrap();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("ossec-conf/tests/status")
        .join(format!("{name}.txt"));
    let text =
        std::fs::read_to_string(&fixture).unwrap_or_else(|e| panic!("{}: {e}", fixture.display()));
    let want = status_event(text.trim_end()).expect("the fixture is a status line");
    let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    assert_eq!(keys(event), keys(&want), "{name}: members");
    assert_eq!(event["kind"], want["kind"], "{name}");
    assert_eq!(event["reason"], want["reason"], "{name}");
}

/// `YYYY/MM/DD` of today minus `days_ago`, as key folders spell it.
pub fn day(days_ago: i64) -> String {
    let date = time::OffsetDateTime::now_utc().date() - time::Duration::days(days_ago);
    format!(
        "{:04}/{:02}/{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// The key of a log file, as CloudTrail names it. `day` is `YYYY/MM/DD`, `hhmm` the delivery
/// time, `prefix` what precedes `AWSLogs/` (empty or ending in `/`).
pub fn log_key(
    prefix: &str,
    org: Option<&str>,
    account: &str,
    region: &str,
    day: &str,
    hhmm: &str,
) -> String {
    let org = org.map(|o| format!("{o}/")).unwrap_or_default();
    let stamp_day = day.replace('/', "");
    format!(
        "{prefix}AWSLogs/{org}{account}/CloudTrail/{region}/{day}/{account}_CloudTrail_{region}_{stamp_day}T{hhmm}Z_{:08x}.json.gz",
        fxhash(&format!("{org}{account}{region}{day}{hhmm}"))
    )
}

fn fxhash(s: &str) -> u32 {
    s.bytes().fold(0x811c9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x01000193)
    })
}

/// A CloudTrail record shaped like the real ones, with the fields in CloudTrail's order.
pub fn record(id: &str, event_name: &str, account: &str, region: &str) -> Value {
    json!({
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDAEXAMPLEEXAMPLE01",
            "arn": format!("arn:aws:iam::{account}:user/alice"),
            "accountId": account,
            "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
            "userName": "alice"
        },
        "eventTime": "2026-11-20T10:00:00Z",
        "eventSource": "ec2.amazonaws.com",
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": "203.0.113.45",
        "userAgent": "aws-cli/2.22.4 Python/3.12.6 Linux/6.1",
        "requestParameters": {"instancesSet": {"items": [{"instanceId": "i-0abcd1234efgh5678"}]}},
        "responseElements": null,
        "requestID": format!("req-{id}"),
        "eventID": id,
        "readOnly": false,
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": account,
        "eventCategory": "Management"
    })
}

/// `n` records with ids `{tag}-0` .. `{tag}-{n-1}`.
pub fn records(tag: &str, n: usize, account: &str, region: &str) -> Vec<Value> {
    (0..n)
        .map(|i| record(&format!("{tag}-{i}"), "StopInstances", account, region))
        .collect()
}

/// `{"Records":[...]}`, compact, as CloudTrail writes it.
pub fn log_body(records: &[Value]) -> Vec<u8> {
    serde_json::to_vec(&json!({ "Records": records })).unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// The ids of `records`, in order.
pub fn ids(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| r["eventID"].as_str().unwrap().to_owned())
        .collect()
}

/// `n` records with ids `{tag}-0`..., each with `pad` bytes of incompressible text in
/// `requestParameters`: their gzip object is about as large as its JSON, so a test can make
/// one larger than the whole-download limit.
pub fn padded_records(tag: &str, n: usize, pad: usize, account: &str) -> Vec<Value> {
    let mut seed = 0x2545F4914F6CDD1Du64;
    (0..n)
        .map(|i| {
            let mut r = record(&format!("{tag}-{i}"), "GetObject", account, "us-east-1");
            let text: String = (0..pad)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    char::from(
                        b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/"
                            [(seed % 64) as usize],
                    )
                })
                .collect();
            r["requestParameters"] = json!({ "pad": text });
            r
        })
        .collect()
}

// SQS and SNS on the same moto server, for the SQS mode: queues through the SQS SDK (built like
// Trail's S3 client), topics through SNS's query API (no SNS crate here; moto routes a request
// by the service its Authorization header names and checks no signature).

/// An SQS client for the moto server, with the tests' static credentials.
pub fn sqs_client() -> &'static aws_sdk_sqs::Client {
    static CLIENT: OnceLock<aws_sdk_sqs::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .endpoint_url(&server().endpoint)
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "test", "test", None, None, "tests",
            ))
            .http_client(
                aws_smithy_http_client::Builder::new()
                    .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                        aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                    ))
                    .build_https(),
            )
            .build();
        aws_sdk_sqs::Client::from_conf(config)
    })
}

/// A queue of its own for one test.
pub struct Queue {
    pub name: String,
    /// As moto gives it: `http://127.0.0.1:PORT/123456789012/NAME`.
    pub url: String,
    pub arn: String,
}

/// How many messages a queue holds, as GetQueueAttributes tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueCounts {
    pub visible: u64,
    /// Received and not yet deleted nor given back.
    pub not_visible: u64,
}

impl Queue {
    pub fn new(name: &str) -> Queue {
        use aws_sdk_sqs::types::QueueAttributeName;
        let client = sqs_client();
        let name = name.replace('_', "-");
        let url = runtime()
            .block_on(client.create_queue().queue_name(&name).send())
            .expect("creating the test queue")
            .queue_url
            .expect("a queue URL");
        let attributes = runtime()
            .block_on(
                client
                    .get_queue_attributes()
                    .queue_url(&url)
                    .attribute_names(QueueAttributeName::QueueArn)
                    .send(),
            )
            .expect("the queue's ARN")
            .attributes
            .unwrap_or_default();
        let arn = attributes[&QueueAttributeName::QueueArn].clone();
        Queue { name, url, arn }
    }

    /// Sends one message, as a producer (or a test) does by hand.
    pub fn send(&self, body: &str) {
        runtime()
            .block_on(
                sqs_client()
                    .send_message()
                    .queue_url(&self.url)
                    .message_body(body)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("sending to {}: {e:?}", self.url));
    }

    pub fn counts(&self) -> QueueCounts {
        use aws_sdk_sqs::types::QueueAttributeName;
        let attributes = runtime()
            .block_on(
                sqs_client()
                    .get_queue_attributes()
                    .queue_url(&self.url)
                    .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                    .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("attributes of {}: {e:?}", self.url))
            .attributes
            .unwrap_or_default();
        let count = |name: QueueAttributeName| -> u64 {
            attributes
                .get(&name)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name:?} of {}: {attributes:?}", self.url))
        };
        QueueCounts {
            visible: count(QueueAttributeName::ApproximateNumberOfMessages),
            not_visible: count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        }
    }

    /// Lets the visibility timeout of every hidden message of this queue pass at once, as if
    /// its time had gone by (a run takes messages for 120 s; moto cannot be told the time).
    /// moto's introspection API (`/moto-api/data.json`) hands out each message's receipt
    /// handles; only this queue's are taken. Only for messages no live run holds: a test calls
    /// it when no collector is running. Returns how many messages became visible.
    pub fn let_visibility_timeouts_pass(&self) -> usize {
        let (status, text) = http_to_moto("GET", "/moto-api/data.json", &[], "");
        assert_eq!(status, 200, "moto's data.json: {text}");
        let data: Value = serde_json::from_str(&text).expect("moto's data.json is JSON");
        // Each received copy is listed too; any receipt handle a message ever had works.
        let mut handles: Vec<String> = Vec::new();
        for message in data["sqs"]["Message"].as_array().into_iter().flatten() {
            if message["visible"] == false {
                for handle in message["all_receipt_handles"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    if let Some(h) = handle.as_str() {
                        if !handles.iter().any(|known| known == h) {
                            handles.push(h.to_owned());
                        }
                    }
                }
            }
        }
        let before = self.counts().not_visible;
        for handle in handles {
            // Handles of other queues, or of messages since deleted, are refused: fine.
            let _ = runtime().block_on(
                sqs_client()
                    .change_message_visibility()
                    .queue_url(&self.url)
                    .receipt_handle(handle)
                    .visibility_timeout(0)
                    .send(),
            );
        }
        let after = self.counts().not_visible;
        assert_eq!(
            after, 0,
            "every hidden message of {} is visible again",
            self.url
        );
        before as usize
    }
}

/// An SNS topic on the moto server.
pub struct Topic {
    pub arn: String,
}

impl Topic {
    pub fn new(name: &str) -> Topic {
        let answer = sns(&[("Action", "CreateTopic"), ("Name", name)]);
        let arn = between(&answer, "<TopicArn>", "</TopicArn>")
            .unwrap_or_else(|| panic!("CreateTopic: {answer}"))
            .to_owned();
        Topic { arn }
    }

    /// Subscribes `queue`; `raw`: RawMessageDelivery, the message itself instead of an SNS
    /// envelope around it.
    pub fn subscribe(&self, queue: &Queue, raw: bool) {
        let mut params = vec![
            ("Action", "Subscribe"),
            ("TopicArn", self.arn.as_str()),
            ("Protocol", "sqs"),
            ("Endpoint", queue.arn.as_str()),
        ];
        if raw {
            params.extend([
                ("Attributes.entry.1.key", "RawMessageDelivery"),
                ("Attributes.entry.1.value", "true"),
            ]);
        }
        let answer = sns(&params);
        assert!(answer.contains("<SubscriptionArn>"), "Subscribe: {answer}");
    }

    pub fn publish(&self, message: &str) {
        let answer = sns(&[
            ("Action", "Publish"),
            ("TopicArn", self.arn.as_str()),
            ("Message", message),
        ]);
        assert!(answer.contains("<MessageId>"), "Publish: {answer}");
    }
}

impl Trail {
    /// Has S3 send an event notification to `queue` for each object created in the bucket
    /// (S3 first sends an `s3:TestEvent`).
    pub fn notify_queue(&self, queue: &Queue) {
        use aws_sdk_s3::types::{Event, NotificationConfiguration, QueueConfiguration};
        let config = NotificationConfiguration::builder()
            .queue_configurations(
                QueueConfiguration::builder()
                    .queue_arn(&queue.arn)
                    .events(Event::from("s3:ObjectCreated:*"))
                    .build()
                    .unwrap(),
            )
            .build();
        self.set_notifications(config);
    }

    /// The same, to an SNS topic.
    pub fn notify_topic(&self, topic: &Topic) {
        use aws_sdk_s3::types::{Event, NotificationConfiguration, TopicConfiguration};
        let config = NotificationConfiguration::builder()
            .topic_configurations(
                TopicConfiguration::builder()
                    .topic_arn(&topic.arn)
                    .events(Event::from("s3:ObjectCreated:*"))
                    .build()
                    .unwrap(),
            )
            .build();
        self.set_notifications(config);
    }

    fn set_notifications(&self, config: aws_sdk_s3::types::NotificationConfiguration) {
        runtime()
            .block_on(
                self.client
                    .put_bucket_notification_configuration()
                    .bucket(&self.bucket)
                    .notification_configuration(config)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("notifications of {}: {e:?}", self.bucket));
    }
}

/// One SNS query-API call; returns the answer's XML.
fn sns(params: &[(&str, &str)]) -> String {
    let body: Vec<String> = params
        .iter()
        .chain(&[("Version", "2010-03-31")])
        .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
        .collect();
    let auth = "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/sns/aws4_request, \
                SignedHeaders=host, Signature=0";
    let (status, text) = http_to_moto(
        "POST",
        "/",
        &[
            ("Authorization", auth),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &body.join("&"),
    );
    assert_eq!(status, 200, "SNS {params:?}: {text}");
    text
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(&text[from..to])
}

/// A plain HTTP/1.1 request to the moto server; returns the status and the body.
fn http_to_moto(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    use std::io::Read;
    let address = server().endpoint.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&address).expect("connecting to moto");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP response");
    let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
    let mut rest = &response[split + 4..];
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("an HTTP status");
    let mut body = Vec::new();
    if head.contains("transfer-encoding: chunked") {
        while let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
            let size = std::str::from_utf8(&rest[..end])
                .ok()
                .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
                .unwrap_or(0);
            if size == 0 {
                break;
            }
            body.extend_from_slice(&rest[end + 2..end + 2 + size]);
            rest = &rest[(end + 4 + size).min(rest.len())..];
        }
    } else {
        body.extend_from_slice(rest);
    }
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Runs `job` on the harness's runtime (for the SDK clients the tests drive moto with).
pub fn block_on<T>(job: impl std::future::Future<Output = T>) -> T {
    runtime().block_on(job)
}

/// Puts `objects` log files of `per_object` records in one partition of account 111122223333,
/// one a minute from midnight today, returning their keys and all ids in key order.
pub fn fill(
    trail: &Trail,
    tag: &str,
    objects: usize,
    per_object: usize,
) -> (Vec<String>, Vec<String>) {
    let account = "111122223333";
    let mut keys = Vec::new();
    let mut want = Vec::new();
    for i in 0..objects {
        let recs = records(&format!("{tag}{i}"), per_object, account, "us-east-1");
        let hhmm = format!("{:02}{:02}", i / 60, i % 60);
        let key = log_key("", None, account, "us-east-1", &day(0), &hhmm);
        trail.put_log(&key, &recs);
        keys.push(key);
        want.extend(ids(&recs));
    }
    (keys, want)
}

/// A trail of its own holding one log file of 3 records; the trail and their ids.
pub fn trail_with_logs(name: &str) -> (Trail, Vec<String>) {
    let trail = Trail::new(name);
    let records = records(name, 3, "111122223333", "us-east-1");
    trail.put_log(
        &log_key("", None, "111122223333", "us-east-1", &day(0), "0100"),
        &records,
    );
    (trail, ids(&records))
}
