//! What each command does once the command line is parsed: the main job (one collector run,
//! `main_job`) and the everyday subcommands, each in its own module. Every command ends in an exit code
//! from [`crate::cli::exit`].

mod check;
mod docs;
mod main_job;
mod ossec_conf;
mod state;

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use crate::cli::{Cli, Command};

pub fn run(cli: Cli) -> ExitCode {
    let code = match cli.command {
        None => main_job::run(&cli),
        Some(Command::Check {
            target,
            sqs_queue_url,
            agent,
        }) => block_on(check::run(&target, sqs_queue_url.as_deref(), &agent)),
        Some(Command::State(command)) => state::run(&command),
        Some(Command::OssecConf { target, run, agent }) => ossec_conf::run(&target, &run, &agent),
        Some(Command::GenerateDocs { out }) => docs::run(&out),
    };
    ExitCode::from(code)
}

/// Runs `job` on a fresh multi-threaded runtime and returns its result.
pub(crate) fn block_on<T>(job: impl Future<Output = T>) -> T {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("starting the async runtime");
    let result = runtime.block_on(job);
    // Abandoned downloads must not hold the exit.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}
