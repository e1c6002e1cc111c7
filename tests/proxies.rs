//! Proxies end to end: the real binary against moto through a real forward proxy on 127.0.0.1
//! (`support::forward_proxy`), configured as a data centre's agent has it: HTTP_PROXY /
//! HTTPS_PROXY / NO_PROXY in the environment (lowercase winning, as the AWS CLI reads them), or
//! `--proxy`. The local S3 endpoint is http://, so its requests reach the proxy with their
//! absolute URI; an https:// endpoint makes the client open a CONNECT tunnel instead. A proxy
//! password never shows on stdout or stderr, even at the SDK's most verbose.

mod support;

use std::process::Command;

use support::forward_proxy::{basic, ForwardProxy, Seen};
use support::*;

const USER: &str = "agent-proxy";
const PASSWORD: &str = "pr0xy-s3cret-7f3a";

/// `http://USER:PASSWORD@127.0.0.1:PORT` for `proxy`.
fn with_password(proxy: &ForwardProxy, password: &str) -> String {
    format!("http://{USER}:{password}@{}", proxy.address)
}

/// Runs `cmd` with `env` added (after the tests' own environment, which clears any proxy
/// variable of the machine) at full verbosity, checking that no password reached the output.
fn run_with(mut cmd: Command, env: &[(&str, &str)]) -> Run {
    for (name, value) in env {
        cmd.env(name, value);
    }
    let output = cmd.arg("-vv").env("RUST_LOG", "trace").output().unwrap();
    let run = Run::from(output);
    let all = format!("{}\n{}", run.lines.join("\n"), run.stderr);
    for secret in [PASSWORD, "wrong-pa55word", &basic(USER, PASSWORD)] {
        assert!(!all.contains(secret), "{secret:?} in the output:\n{all}");
    }
    run
}

fn assert_all_through(seen: &[Seen], endpoint: &str, authorization: &str) {
    assert!(seen.len() >= 3, "listings and a download: {seen:#?}");
    for request in seen {
        assert_ne!(request.method, "CONNECT", "{request:?}");
        assert!(
            request.target.starts_with(&format!("{endpoint}/")),
            "an absolute URI to the S3 endpoint: {request:?}"
        );
        assert_eq!(request.authorization.as_deref(), Some(authorization));
        assert_eq!(request.refused, None);
    }
}

/// HTTP_PROXY with credentials carries every request; NO_PROXY=127.0.0.1 takes it around the
/// proxy; a wrong password fails the run with the proxy's 407, and says so without it.
#[test]
fn http_proxy_carries_every_request_and_no_proxy_bypasses_it() {
    let (trail, expected) = trail_with_logs("proxy-env");
    let proxy = ForwardProxy::with_credentials(USER, PASSWORD);
    let url = with_password(&proxy, PASSWORD);
    let auth = format!("Basic {}", basic(USER, PASSWORD));

    let run = run_with(trail.command(&["--dry-run"]), &[("HTTP_PROXY", &url)]);
    run.expect_code(0);
    assert_eq!(run.event_ids(), expected);
    assert_all_through(&proxy.take_log(), &server().endpoint, &auth);

    for no_proxy in ["127.0.0.1", "localhost,127.0.0.0/8"] {
        let run = run_with(
            trail.command(&["--dry-run"]),
            &[("HTTP_PROXY", &url), ("NO_PROXY", no_proxy)],
        );
        run.expect_code(0);
        assert_eq!(run.event_ids(), expected);
        assert!(
            proxy.take_log().is_empty(),
            "NO_PROXY={no_proxy} bypasses the proxy"
        );
    }

    let wrong = with_password(&proxy, "wrong-pa55word");
    let run = run_with(trail.command(&["--dry-run"]), &[("HTTP_PROXY", &wrong)]);
    run.expect_code(1);
    let seen = proxy.take_log();
    assert!(
        !seen.is_empty() && seen.iter().all(|r| r.refused == Some(407)),
        "{seen:#?}"
    );
    assert!(
        run.stderr.contains("cannot reach S3")
            && run
                .stderr
                .contains("HTTP 407 from the proxy: proxy authorization required"),
        "{}",
        run.stderr
    );
    assert_eq!(run.status[0]["reason"], "unreachable");
}

/// The lowercase variable wins over the uppercase one, as in the AWS CLI; an empty lowercase
/// one means no proxy; HTTPS_PROXY alone leaves http:// requests alone.
#[test]
fn the_environment_is_read_as_the_aws_cli_reads_it() {
    let (trail, expected) = trail_with_logs("proxy-case");
    let proxy = ForwardProxy::start();
    // Nothing listens there: a request sent to it fails.
    let dead = "http://127.0.0.1:9";

    let run = run_with(
        trail.command(&["--dry-run"]),
        &[("http_proxy", &proxy.url), ("HTTP_PROXY", dead)],
    );
    run.expect_code(0);
    assert_eq!(run.event_ids(), expected);
    assert!(!proxy.take_log().is_empty());

    for env in [
        &[("http_proxy", ""), ("HTTP_PROXY", dead)][..],
        &[("HTTPS_PROXY", dead), ("ALL_PROXY", dead)],
    ] {
        let run = run_with(trail.command(&["--dry-run"]), env);
        run.expect_code(0);
        assert_eq!(run.event_ids(), expected, "{env:?}");
    }
}

/// HTTP_PROXY and HTTPS_PROXY may name different proxies: each takes its own scheme.
#[test]
fn http_and_https_requests_take_their_own_proxies() {
    let (trail, expected) = trail_with_logs("proxy-split");
    let for_http = ForwardProxy::start();
    let for_https = ForwardProxy::start();
    let run = run_with(
        trail.command(&["--dry-run"]),
        &[
            ("HTTP_PROXY", &for_http.url),
            ("HTTPS_PROXY", &for_https.url),
        ],
    );
    run.expect_code(0);
    assert_eq!(run.event_ids(), expected);
    assert!(!for_http.take_log().is_empty());
    assert!(for_https.take_log().is_empty());
}

/// `--proxy` (here without a scheme, which means http://) wins over the environment, and
/// NO_PROXY still applies to it.
#[test]
fn the_proxy_flag_wins_and_no_proxy_still_applies() {
    let (trail, expected) = trail_with_logs("proxy-flag");
    let proxy = ForwardProxy::start();
    let run = run_with(
        trail.command(&["--dry-run", "--proxy", &proxy.address]),
        &[("HTTP_PROXY", "http://127.0.0.1:9")],
    );
    run.expect_code(0);
    assert_eq!(run.event_ids(), expected);
    assert!(!proxy.take_log().is_empty());

    let run = run_with(
        trail.command(&["--dry-run", "--proxy", &proxy.url]),
        &[("no_proxy", "127.0.0.1")],
    );
    run.expect_code(0);
    assert_eq!(run.event_ids(), expected);
    assert!(proxy.take_log().is_empty());
}

/// An https:// endpoint goes through a CONNECT tunnel to its host and port, with the proxy's
/// credentials on the CONNECT; a wrong password gets the proxy's 407 on the CONNECT. (The local
/// server speaks plain HTTP, so the TLS handshake inside the tunnel fails: what counts here is
/// the tunnel asked for and its bytes carried, and nothing else.)
#[test]
fn https_requests_go_through_a_connect_tunnel() {
    let (trail, _) = trail_with_logs("proxy-connect");
    let proxy = ForwardProxy::with_credentials(USER, PASSWORD);
    let https = server().endpoint.replace("http://", "https://");
    let authority = https.trim_start_matches("https://").to_owned();
    let run = run_with(
        trail.sub_command_at(&[], &https, &["--dry-run"]),
        &[("HTTPS_PROXY", &with_password(&proxy, PASSWORD))],
    );
    run.expect_code(1);
    assert!(
        run.stderr.contains("TLS handshake failed"),
        "{}",
        run.stderr
    );
    let seen = proxy.take_log();
    assert!(!seen.is_empty());
    for request in &seen {
        assert_eq!(
            (request.method.as_str(), request.target.as_str()),
            ("CONNECT", authority.as_str())
        );
        assert_eq!(
            request.authorization.as_deref(),
            Some(format!("Basic {}", basic(USER, PASSWORD)).as_str())
        );
        assert_eq!(request.refused, None);
    }

    let run = run_with(
        trail.sub_command_at(&[], &https, &["--dry-run"]),
        &[("HTTPS_PROXY", &with_password(&proxy, "wrong-pa55word"))],
    );
    run.expect_code(1);
    assert!(
        run.stderr
            .contains("tunnel error: proxy authorization required"),
        "{}",
        run.stderr
    );
    let seen = proxy.take_log();
    assert!(
        !seen.is_empty()
            && seen
                .iter()
                .all(|r| r.method == "CONNECT" && r.refused == Some(407)),
        "{seen:#?}"
    );

    let run = run_with(
        trail.sub_command_at(&[], &https, &["--dry-run"]),
        &[
            ("HTTPS_PROXY", &with_password(&proxy, PASSWORD)),
            ("NO_PROXY", "127.0.0.1"),
        ],
    );
    run.expect_code(1);
    assert!(proxy.take_log().is_empty());
}

/// `check` says where requests go, the password masked, and its block keeps `--proxy` with
/// the password masked (and a warning on stderr saying why).
#[test]
fn check_and_ossec_conf_show_the_proxy_masked() {
    let (trail, _) = trail_with_logs("proxy-check");
    let proxy = ForwardProxy::with_credentials(USER, PASSWORD);
    let url = with_password(&proxy, PASSWORD);
    let run = run_with(trail.sub_command(&["check"], &[]), &[("http_proxy", &url)]);
    let out = run.lines.join("\n");
    assert_eq!(run.code, 0, "{out}\n{}", run.stderr);
    assert!(
        out.contains(&format!(
            "proxy       ok    http:// requests through http://***@{} (from http_proxy) \
             (https:// ones directly)",
            proxy.address
        )),
        "{out}"
    );
    assert!(!proxy.take_log().is_empty(), "check went through it");

    let mut cmd = Command::new(BIN);
    cmd.args(["ossec-conf", "--bucket", "trail", "--proxy", &url]);
    test_env(&mut cmd);
    let run = run_with(cmd, &[]);
    run.expect_code(0);
    let out = run.lines.join("\n");
    assert!(
        out.contains(&format!(
            " --proxy 'http://***@{}'</command>",
            proxy.address
        )),
        "{out}"
    );
    assert!(run.stderr.contains("masked"), "{}", run.stderr);
}

/// A proxy setting that is no URL stops the run as a usage error whose message, on stderr
/// and in the status event, masks the password.
#[test]
fn a_bad_proxy_url_is_refused_without_its_password() {
    let (trail, _) = trail_with_logs("proxy-bad");
    let bad = format!("socks9://{USER}:{PASSWORD}@127.0.0.1:1080");
    let run = run_with(trail.command(&["--proxy", &bad]), &[]);
    run.expect_code(2);
    assert!(
        run.stderr
            .contains("--proxy socks9://***@127.0.0.1:1080 is not a proxy URL"),
        "{}",
        run.stderr
    );
    assert_eq!(run.status[0]["reason"], "usage");

    let run = run_with(trail.command(&[]), &[("HTTPS_PROXY", &bad)]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("HTTPS_PROXY socks9://***@"),
        "{}",
        run.stderr
    );
}
