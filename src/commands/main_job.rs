//! The main job, what the agent runs: one collector run (`collect`), then what the run must
//! tell beyond its records: the closing line on stderr, the status events on stdout
//! (`status`), and the run's entry in the history (`history`). A run that cannot even start
//! (no state directory, a state that cannot be opened) still gets its status event: under
//! the agent it is the only word that reaches anyone.

use std::io::Write;

use time::OffsetDateTime;

use crate::cli::{exit, Cli, OSSEC_LINE_LIMIT, WAZUH_LINE_LIMIT};
use crate::collect::{self, RunError};
use crate::flatten::MIN_LINE_BYTES;
use crate::history::History;
use crate::state::StateError;
use crate::status::{self, Event, Kind};

pub fn run(cli: &Cli) -> u8 {
    // To the second: it is shown to people, in status events and `state show`.
    let now = OffsetDateTime::now_utc();
    let started = now.replace_nanosecond(0).unwrap_or(now);
    let settings = match cli.settings() {
        Ok(settings) => settings,
        Err(message) => {
            tracing::error!("{message}");
            if !cli.run.no_status_events {
                let event = Event {
                    kind: Kind::Failed,
                    bucket: cli.target.bucket().to_owned(),
                    prefix: cli.target.prefix(),
                    message,
                    exit_code: exit::USAGE,
                    details: vec![("reason", "usage".into())],
                };
                print_events(&[event], MIN_LINE_BYTES);
            }
            return exit::USAGE;
        }
    };
    warn_about_line_limit(settings.max_line_bytes);

    let result = super::block_on(collect::run(&settings, || std::io::stdout().lock()));
    crate::progress::finish();
    let prefix = if settings.dry_run { "dry run: " } else { "" };
    match &result {
        Ok(summary) if summary.is_partial() => tracing::warn!("{prefix}{summary}"),
        Ok(summary) => tracing::info!("{prefix}{summary}"),
        Err(e) => tracing::error!("{e}"),
    }

    let outcome = status::outcome(&settings.bucket, &settings.prefix, &result, started);
    // A busy state belongs to the run that holds it, and a dry run changes nothing: neither
    // is remembered, and neither can say "recovered".
    let busy = matches!(result, Err(RunError::State(StateError::Busy { .. })));
    let remembered = !settings.dry_run && !busy;
    let history = History::at(&settings.state_path);
    let mut events: Vec<Event> = outcome.events.clone();
    if remembered {
        let earlier = history.runs_of(&settings.bucket, &settings.prefix);
        events.extend(status::recovery(&outcome, &earlier));
    }
    let stdout_works = !matches!(result, Err(RunError::Output(_)));
    if settings.status_events && stdout_works {
        print_events(&events, settings.max_line_bytes);
    }
    if remembered && settings.state_path.is_dir() {
        if let Err(e) = history.record(&outcome.run) {
            tracing::warn!(
                "cannot remember this run in {}: {e}",
                settings.state_path.join("runs").display()
            );
        }
    }
    outcome.exit_code
}

fn print_events(events: &[Event], max_line_bytes: usize) {
    if events.is_empty() {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = status::print(&mut out, events, max_line_bytes).and_then(|()| out.flush()) {
        tracing::error!("cannot write the run's status event to stdout: {e}");
    }
}

/// Lines longer than the agent keeps arrive at the manager cut in pieces: allowed, since a
/// Wazuh agent keeps more than OSSEC's, but said.
fn warn_about_line_limit(max_line_bytes: usize) {
    if max_line_bytes > WAZUH_LINE_LIMIT {
        tracing::warn!(
            "--max-line-bytes {max_line_bytes} is above what any agent keeps as one event \
             (OSSEC {OSSEC_LINE_LIMIT} bytes, Wazuh {WAZUH_LINE_LIMIT}): longer lines reach \
             the manager cut in pieces that no decoder reads"
        );
    } else if max_line_bytes > OSSEC_LINE_LIMIT {
        tracing::warn!(
            "--max-line-bytes {max_line_bytes} is above OSSEC's {OSSEC_LINE_LIMIT} bytes: \
             right for a Wazuh agent (it keeps {WAZUH_LINE_LIMIT}), but an OSSEC agent cuts \
             longer lines into several events"
        );
    }
}
