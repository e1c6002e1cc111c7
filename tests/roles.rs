//! Assumed roles end to end: the real binary with `--role-arn` against moto, which serves STS
//! AssumeRole and GetCallerIdentity on the same endpoint as S3 and SQS (so `--endpoint-url`
//! takes STS there too). The fault proxy in front of moto shows what each request was signed
//! with: AssumeRole with the chain's credentials (`test`), everything else with the role's.
//! moto grants AssumeRole to anyone (it checks no trust policy), so a refusal is STS's real
//! answer to an untrusted principal, made by the fault proxy, and the advice that follows is
//! this binary's.

mod support;

use support::proxy::{percent_decode, Fault, Proxy, Request, Rule};
use support::*;

const ACCOUNT: &str = "111122223333";
const ROLE: &str = "arn:aws:iam::222233334444:role/cloudtrail-reader";
/// moto's identity for the tests' `test` credentials.
const BASE: &str = "arn:aws:sts::123456789012:user/moto";

/// The value of `name` in a form-encoded body.
fn form(request: &Request, name: &str) -> Option<String> {
    request.body.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| percent_decode(&value.replace('+', " ")))
    })
}

fn assume_calls(log: &[Request]) -> Vec<Request> {
    log.iter()
        .filter(|r| r.body.contains("Action=AssumeRole"))
        .cloned()
        .collect()
}

/// An AccessDenied on AssumeRole, worded as STS words it for a principal the role's trust
/// policy does not name.
fn deny_assume_role(proxy: &Proxy) {
    proxy.add(
        Rule::new(Fault::QueryError(
            403,
            "AccessDenied",
            "User: arn:aws:iam::123456789012:user/moto is not authorized to perform: \
             sts:AssumeRole on resource: arn:aws:iam::222233334444:role/cloudtrail-reader",
        ))
        .on_body("Action=AssumeRole"),
    );
}

/// A run with `--role-arn` and its companions asks STS once, with the chain's credentials and
/// exactly the flags' values, and makes every S3 request with the role's credentials.
#[test]
fn a_run_makes_every_request_as_the_role() {
    let (trail, expected) = trail_with_logs("role-run");
    let proxy = Proxy::start(&server().endpoint);
    let run = trail.run_at(
        &proxy.endpoint,
        &[
            "--role-arn",
            ROLE,
            "--external-id",
            "ext-4711",
            "--role-session-name",
            "agent-7",
            "--role-duration",
            "900",
        ],
    );
    run.expect_code(0);
    assert_eq!(run.event_ids(), expected);

    let log = proxy.take_log();
    let assumed = assume_calls(&log);
    assert_eq!(assumed.len(), 1, "one AssumeRole per run: {log:#?}");
    let call = &assumed[0];
    assert_eq!(call.service(), "sts");
    assert_eq!(
        call.access_key, "test",
        "AssumeRole is signed by the chain's credentials"
    );
    assert_eq!(form(call, "RoleArn").as_deref(), Some(ROLE));
    assert_eq!(form(call, "ExternalId").as_deref(), Some("ext-4711"));
    assert_eq!(form(call, "RoleSessionName").as_deref(), Some("agent-7"));
    assert_eq!(form(call, "DurationSeconds").as_deref(), Some("900"));

    let s3: Vec<&Request> = log.iter().filter(|r| r.service() == "s3").collect();
    assert!(s3.len() >= 3, "listings and a download: {log:#?}");
    for request in &s3 {
        assert!(
            request.access_key != "test" && !request.access_key.is_empty(),
            "S3 requests are signed with the role's credentials: {request:?}"
        );
    }
}

/// Without --role-session-name the session is named after the tool and the host, in STS's
/// characters; without --role-duration it lasts STS's default hour.
#[test]
fn the_session_is_named_after_the_host_by_default() {
    let (trail, expected) = trail_with_logs("role-defaults");
    let proxy = Proxy::start(&server().endpoint);
    let run = trail.run_at(&proxy.endpoint, &["--role-arn", ROLE]);
    run.expect_code(0);
    assert_eq!(run.event_ids(), expected);
    let log = proxy.take_log();
    let call = &assume_calls(&log)[0];
    let name = form(call, "RoleSessionName").unwrap();
    assert!(name.starts_with("ossec-cloudtrail-"), "{name}");
    assert!(
        name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)),
        "{name}"
    );
    assert_eq!(form(call, "DurationSeconds").as_deref(), Some("3600"));
    assert_eq!(form(call, "ExternalId"), None);
}

/// The SQS mode reads the queue as the role too, as well as the objects it names. (moto keeps
/// queues per account, and the queue is in the tests' account: so is this role.)
#[test]
fn sqs_and_s3_are_both_read_as_the_role() {
    let trail = Trail::new("role-sqs");
    let queue = support::Queue::new("role-sqs");
    trail.notify_queue(&queue);
    let records = records("role-sqs", 2, ACCOUNT, "us-east-1");
    trail.put_log(
        &log_key("", None, ACCOUNT, "us-east-1", &day(0), "0200"),
        &records,
    );
    let proxy = Proxy::start(&server().endpoint);
    let run = trail.run_at(
        &proxy.endpoint,
        &[
            "--sqs-queue-url",
            &queue.url,
            "--role-arn",
            "arn:aws:iam::123456789012:role/queue-reader",
        ],
    );
    run.expect_code(0);
    assert_eq!(run.event_ids(), ids(&records));
    let log = proxy.take_log();
    assert_eq!(assume_calls(&log).len(), 1, "{log:#?}");
    for service in ["sqs", "s3"] {
        let requests: Vec<&Request> = log.iter().filter(|r| r.service() == service).collect();
        assert!(!requests.is_empty(), "{service} requests: {log:#?}");
        for request in requests {
            assert_ne!(request.access_key, "test", "{service}: {request:?}");
        }
    }
}

/// `check` names both identities: the chain's (which the trust policy must name) and the
/// role's session (which every request is made as); its block carries the role flags.
#[test]
fn check_shows_the_base_and_the_assumed_identity() {
    let (trail, _) = trail_with_logs("role-check");
    let run = trail.sub(
        &["check"],
        &["--role-arn", ROLE, "--external-id", "ext-4711"],
    );
    let out = run.lines.join("\n");
    assert_eq!(run.code, 0, "{out}\n{}", run.stderr);
    assert!(
        out.contains(&format!(
            "found, they are {BASE}; they assume the role below"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "assumed {ROLE}: requests are made as \
             arn:aws:sts::222233334444:assumed-role/cloudtrail-reader/ossec-cloudtrail-"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("--role-arn {ROLE} --external-id ext-4711")),
        "{out}"
    );
}

/// STS refuses AssumeRole: the run fails at once, and stderr, the status event and `check`
/// name the role and say what its trust policy must allow the chain's principal, with the
/// external-id condition when one is given.
#[test]
fn a_refused_assume_role_says_what_the_trust_policy_must_allow() {
    let (trail, _) = trail_with_logs("role-denied");
    let proxy = Proxy::start(&server().endpoint);
    deny_assume_role(&proxy);

    let run = trail.run_at(
        &proxy.endpoint,
        &["--role-arn", ROLE, "--external-id", "ext-4711"],
    );
    run.expect_code(1);
    assert!(run.lines.is_empty(), "{:?}", run.lines);
    let event = &run.status[0];
    assert_eq!(event["kind"], "failed");
    assert_eq!(event["reason"], "assume_role_denied");
    let message = event["message"].as_str().unwrap();
    for text in [&run.stderr, message] {
        for expected in [
            &format!(
                "STS refused to let {} assume the role {ROLE}",
                "arn:aws:iam::123456789012:user/moto"
            )[..],
            "the role's trust policy must allow that principal sts:AssumeRole when \
             sts:ExternalId is the --external-id value",
            r#""Principal": {"AWS": "arn:aws:iam::123456789012:user/moto"}"#,
            r#""Condition": {"StringEquals": {"sts:ExternalId": "THE --external-id VALUE"}}"#,
            "HTTP 403 AccessDenied",
        ] {
            assert!(text.contains(expected), "{expected:?} in:\n{text}");
        }
        assert!(
            !text.contains("ext-4711"),
            "the external id itself is not repeated: {text}"
        );
    }
    // Nothing was asked of S3 with credentials it never got.
    assert!(
        proxy.take_log().iter().all(|r| r.service() != "s3"),
        "no S3 request"
    );

    // Without an external id, no condition is asked for.
    let run = trail.run_at(&proxy.endpoint, &["--role-arn", ROLE]);
    run.expect_code(1);
    assert_eq!(run.status[0]["reason"], "assume_role_denied");
    assert!(!run.stderr.contains("sts:ExternalId"), "{}", run.stderr);

    // The SQS mode meets the refusal on its first call and says the same.
    let run = trail.run_at(
        &proxy.endpoint,
        &[
            "--sqs-queue-url",
            &format!("{}/123456789012/never-reached", server().endpoint),
            "--role-arn",
            ROLE,
        ],
    );
    run.expect_code(1);
    assert_eq!(
        run.status[0]["reason"], "assume_role_denied",
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!("assume the role {ROLE}")),
        "{}",
        run.stderr
    );

    // check: the credentials work, the role step fails with the statement to add, and the
    // bucket steps wait for it.
    let run = Run::from(
        trail
            .sub_command_at(&["check"], &proxy.endpoint, &["--role-arn", ROLE])
            .output()
            .unwrap(),
    );
    let out = run.lines.join("\n");
    assert_eq!(run.code, 1, "{out}");
    assert!(out.contains(&format!("found, they are {BASE}")), "{out}");
    assert!(
        out.contains(&format!(
            "FAIL  STS refused to let arn:aws:iam::123456789012:user/moto assume the role {ROLE}"
        )),
        "{out}"
    );
    assert!(
        out.contains(
            r#"what to do: the role's trust policy must allow that principal sts:AssumeRole: {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:user/moto"}, "Action": "sts:AssumeRole"}"#
        ),
        "{out}"
    );
    assert!(out.contains("skip  bucket and region"), "{out}");
}

/// STS refusing the chain's own credentials (an unknown or expired key) is a credentials
/// failure, said as such.
#[test]
fn bad_base_credentials_are_bad_credentials() {
    let (trail, _) = trail_with_logs("role-bad-key");
    let proxy = Proxy::start(&server().endpoint);
    proxy.add(
        Rule::new(Fault::QueryError(
            403,
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
        ))
        .on_body("Action=AssumeRole"),
    );
    let run = trail.run_at(&proxy.endpoint, &["--role-arn", ROLE]);
    run.expect_code(1);
    assert_eq!(run.status[0]["reason"], "bad_credentials");
    assert!(
        run.stderr
            .contains("[STS AssumeRole: HTTP 403 InvalidClientTokenId: The security token"),
        "{}",
        run.stderr
    );
}

/// No secret of the role's credentials reaches stderr, even at the SDK's most verbose: the
/// assume-role provider logs the new access key id at DEBUG, which is dropped.
#[test]
fn the_role_credentials_never_reach_stderr() {
    let (trail, expected) = trail_with_logs("role-quiet");
    let proxy = Proxy::start(&server().endpoint);
    let output = trail
        .command_at(&proxy.endpoint, &["--role-arn", ROLE, "-vv"])
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    let run = Run::from(output);
    run.expect_code(0);
    assert_eq!(run.event_ids(), expected);
    let key = proxy
        .take_log()
        .into_iter()
        .find(|r| r.service() == "s3")
        .map(|r| r.access_key)
        .unwrap();
    assert!(key.starts_with("ASIA"), "moto's assumed key: {key}");
    assert!(!run.stderr.contains(&key), "the assumed key id on stderr");
    assert!(!run.lines.join("\n").contains(&key));
}

/// `ossec-conf` puts the role flags given into the agent's command, the defaults left out.
#[test]
fn ossec_conf_carries_the_role_flags() {
    let output = std::process::Command::new(BIN)
        .args([
            "ossec-conf",
            "--bucket",
            "trail",
            "--role-arn",
            ROLE,
            "--external-id",
            "ext-4711",
            "--role-session-name",
            "agent-7",
            "--role-duration",
            "7200",
        ])
        .output()
        .unwrap();
    let out = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{out}");
    assert!(
        out.contains(&format!(
            " --bucket trail --role-arn {ROLE} --external-id ext-4711 --role-session-name \
             agent-7 --role-duration 7200</command>"
        )),
        "{out}"
    );
    let output = std::process::Command::new(BIN)
        .args([
            "ossec-conf",
            "--bucket",
            "trail",
            "--role-arn",
            ROLE,
            "--role-duration",
            "3600",
        ])
        .output()
        .unwrap();
    let out = String::from_utf8(output.stdout).unwrap();
    assert!(
        out.contains(&format!(" --bucket trail --role-arn {ROLE}</command>")),
        "{out}"
    );
    // The companions make no sense alone.
    let output = std::process::Command::new(BIN)
        .args([
            "ossec-conf",
            "--bucket",
            "trail",
            "--external-id",
            "ext-4711",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}
