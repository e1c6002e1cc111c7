//! ossec-cloudtrail: prints new AWS CloudTrail records from S3, one JSON line each, for the
//! OSSEC or Wazuh agent that runs it. The stages live in their modules, in the order the data
//! flows: `listing` -> `fetch` -> `decode` -> `flatten` -> `output` -> `state`, run by
//! `collect`; this file only wires the command line, logging and exit codes.

mod cli;
mod collect;
mod decode;
mod fetch;
mod flatten;
mod layout;
mod listing;
mod output;
mod s3;
mod state;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

use cli::{exit, Cli};
use collect::RunError;
use state::StateError;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    let settings = match cli.settings() {
        Ok(settings) => settings,
        Err(message) => {
            tracing::error!("{message}");
            return ExitCode::from(exit::USAGE);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("starting the async runtime");
    let result = runtime.block_on(collect::run(&settings, || std::io::stdout().lock()));
    // Abandoned downloads must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(summary) => {
            let prefix = if settings.dry_run { "dry run: " } else { "" };
            if summary.is_partial() {
                tracing::warn!("{prefix}{summary}");
                ExitCode::from(exit::PARTIAL)
            } else {
                tracing::info!("{prefix}{summary}");
                ExitCode::from(exit::OK)
            }
        }
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(match e {
                RunError::State(StateError::Busy { .. }) => exit::BUSY,
                RunError::State(_) => exit::STATE,
                RunError::S3(_) | RunError::Output(_) => exit::FAILED,
            })
        }
    }
}

fn init_logging(cli: &Cli) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{filter, fmt, EnvFilter, Layer};
    let wanted =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(cli.log_filter()));
    let layer = fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .with_target(false)
        .with_filter(filter::filter_fn(|meta| !may_hold_secrets(meta)))
        .with_filter(wanted);
    tracing_subscriber::registry().with(layer).init();
}

/// The AWS SDK and HTTP stack log whole signed requests and responses (session tokens
/// included) at TRACE, and the SDK logs the endpoint parameters, which hold the caller's
/// identity (its access key id), at DEBUG: those events are dropped whatever `RUST_LOG` asks
/// for.
fn may_hold_secrets(meta: &tracing::Metadata<'_>) -> bool {
    let target = meta.target();
    (*meta.level() == tracing::Level::TRACE
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
