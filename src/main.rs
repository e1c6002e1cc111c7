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
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(cli.log_filter()));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .with_target(false)
        .init();
}
