//! The progress line a person sees on stderr while the collector runs in a terminal: objects
//! done out of those queued, records printed, and their rate.
//!
//! It exists only when stderr is a terminal. Under the OSSEC agent stderr is a pipe, and a
//! progress bar there would be noise in the agent's log, so every call here is then a no-op.
//! Log lines go through [`StderrWriter`], which lifts the bar out of the way while they print.

use std::io::{self, IsTerminal, Write};
use std::sync::OnceLock;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

static BAR: OnceLock<ProgressBar> = OnceLock::new();

/// Sets the progress line up, if stderr is a terminal. Call once, before logging starts.
pub fn init() {
    if !io::stderr().is_terminal() {
        return;
    }
    // Hidden until the queue is known: subcommands never show it.
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos}/{len} objects, {msg} [{elapsed}]")
            .expect("the progress template is valid"),
    );
    let _ = BAR.set(bar);
}

/// The queue is known: `objects` to print.
pub fn start(objects: u64) {
    if let Some(bar) = BAR.get() {
        bar.set_length(objects);
        bar.reset_elapsed();
        bar.set_draw_target(ProgressDrawTarget::stderr());
        bar.set_message("0 records");
        bar.enable_steady_tick(Duration::from_millis(200));
    }
}

/// One more object was printed; `records` were printed in all so far.
pub fn object_printed(records: u64) {
    if let Some(bar) = BAR.get() {
        bar.inc(1);
        let seconds = bar.elapsed().as_secs_f64().max(0.001);
        bar.set_message(format!(
            "{records} records ({:.0} records/s)",
            records as f64 / seconds
        ));
    }
}

/// The run is over: the line disappears, the summary log line says the rest.
pub fn finish() {
    if let Some(bar) = BAR.get() {
        bar.finish_and_clear();
    }
}

/// stderr for the log: each write happens with the progress line lifted, so a log line never
/// lands in the middle of it.
pub struct StderrWriter;

impl Write for StderrWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match BAR.get() {
            Some(bar) => bar.suspend(|| io::stderr().write(buf)),
            None => io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}
