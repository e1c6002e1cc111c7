//! What each command does once the command line is parsed: the main job (one collector run)
//! and the everyday subcommands, each in its own module. Every command ends in an exit code
//! from [`crate::cli::exit`].

mod check;
mod docs;
mod ossec_conf;
mod state;

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use crate::cli::{exit, Cli, Command};
use crate::collect::{self, RunError};
use crate::state::StateError;

pub fn run(cli: Cli) -> ExitCode {
    let code = match cli.command {
        None => collect_once(&cli),
        Some(Command::Check { target, agent }) => block_on(check::run(&target, &agent)),
        Some(Command::State(command)) => state::run(&command),
        Some(Command::OssecConf { target, run, agent }) => ossec_conf::run(&target, &run, &agent),
        Some(Command::GenerateDocs { out }) => docs::run(&out),
    };
    ExitCode::from(code)
}

/// The main job: one collector run, records on stdout.
fn collect_once(cli: &Cli) -> u8 {
    let settings = match cli.settings() {
        Ok(settings) => settings,
        Err(message) => {
            tracing::error!("{message}");
            return exit::USAGE;
        }
    };
    let result = block_on(collect::run(&settings, || std::io::stdout().lock()));
    crate::progress::finish();
    match result {
        Ok(summary) => {
            let prefix = if settings.dry_run { "dry run: " } else { "" };
            if summary.is_partial() {
                tracing::warn!("{prefix}{summary}");
                exit::PARTIAL
            } else {
                tracing::info!("{prefix}{summary}");
                exit::OK
            }
        }
        Err(e) => {
            tracing::error!("{e}");
            run_error_code(&e)
        }
    }
}

fn run_error_code(e: &RunError) -> u8 {
    match e {
        RunError::State(e) => state_error_code(e),
        RunError::S3(_) | RunError::Output(_) => exit::FAILED,
    }
}

fn state_error_code(e: &StateError) -> u8 {
    match e {
        StateError::Busy { .. } => exit::BUSY,
        _ => exit::STATE,
    }
}

/// Runs `job` on a fresh multi-threaded runtime and returns its result.
fn block_on<T>(job: impl Future<Output = T>) -> T {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("starting the async runtime");
    let result = runtime.block_on(job);
    // Abandoned downloads must not hold the exit.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}
