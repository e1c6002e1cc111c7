//! ossec-cloudtrail: prints new AWS CloudTrail records from S3, one JSON line each, for the
//! OSSEC or Wazuh agent that runs it. The stages live in their modules, in the order the data
//! flows: `listing` -> `fetch` -> `decode` -> `flatten` -> `output` -> `state`, run by
//! `collect`; with `--validate-digests`, `digest` then checks CloudTrail's signed digests
//! against what was printed; how a run ended is told by `status` (events on stdout) and kept by `history`;
//! the main job and the everyday subcommands live in `commands`. This file only wires the command
//! line and logging to them.

mod cli;
mod collect;
mod commands;
mod decode;
mod digest;
mod fetch;
mod flatten;
mod history;
mod layout;
mod listing;
mod output;
mod pipeline;
mod progress;
mod proxy;
mod public_keys;
mod s3;
mod sqs;
mod state;
mod status;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

use cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    progress::init();
    init_logging(cli.verbosity.log_filter());
    commands::run(cli)
}

fn init_logging(default_filter: &str) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{filter, fmt, EnvFilter, Layer};
    let wanted =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let layer = fmt::layer()
        .with_writer(|| progress::StderrWriter)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .with_target(false)
        .with_filter(filter::filter_fn(|meta| !may_hold_secrets(meta)))
        .with_filter(wanted);
    tracing_subscriber::registry().with(layer).init();
}

/// The AWS SDK and HTTP stack log whole signed requests and responses (session tokens
/// included) at TRACE, and the SDK logs the endpoint parameters, which hold the caller's
/// identity (its access key id), at DEBUG, as does the assume-role provider for the assumed
/// key: those events are dropped whatever `RUST_LOG` asks for.
fn may_hold_secrets(meta: &tracing::Metadata<'_>) -> bool {
    let target = meta.target();
    (*meta.level() >= tracing::Level::DEBUG && target.starts_with("aws_config::sts"))
        || (*meta.level() == tracing::Level::TRACE
            && ["aws_", "hyper", "h2", "rustls", "tower"]
                .iter()
                .any(|crate_prefix| target.starts_with(crate_prefix)))
        || [
            "aws_smithy_runtime::client::orchestrator::endpoints",
            "aws_smithy_runtime::client::orchestrator::auth",
            "aws_sdk_s3::endpoint_auth",
        ]
        .contains(&target)
}
