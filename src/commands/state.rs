//! `state show | forget | prune`: what the state remembers for one bucket and prefix, told per
//! partition (account and region), and the two ways to make it forget. The database itself
//! stays behind `crate::state`'s interface; this module groups and words what it returns.

use std::collections::BTreeMap;
use std::path::Path;

use time::format_description::well_known::Rfc3339;
use time::Date;

use crate::cli::{exit, PartitionFilters, StateCommand, Target};
use crate::history::{self, History};
use crate::layout::{self, Partition};
use crate::listing;
use crate::state::{Entry, State};

pub fn run(command: &StateCommand) -> u8 {
    let (StateCommand::Show { target }
    | StateCommand::Forget { target, .. }
    | StateCommand::Prune { target, .. }) = command;
    let path = match target.state_path() {
        Ok(path) => path,
        Err(message) => {
            tracing::error!("{message}");
            return exit::USAGE;
        }
    };
    let read_only = matches!(command, StateCommand::Show { .. });
    if !path.join("db").exists() {
        println!(
            "nothing remembered yet: {} holds no state (no run has used it; pass --state if \
             the agent's runs use another one)",
            path.display()
        );
        if read_only {
            print_runs(&path, target);
        }
        return exit::OK;
    }
    let state = match State::open(&path, target.bucket(), &target.prefix(), read_only) {
        Ok(state) => state,
        Err(e) => {
            tracing::error!("{e}");
            // The runs that failed on this very state are what its owner needs to see.
            if read_only {
                print_runs(&path, target);
            }
            return e.exit_code();
        }
    };
    let result = match command {
        StateCommand::Show { target } => show(&state, target, &path),
        StateCommand::Forget {
            target,
            since,
            filters,
        } => forget(&state, target, *since, filters),
        StateCommand::Prune { target, lookback } => prune(&state, target, lookback.lookback_days),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e}");
            e.exit_code()
        }
    }
}

type Result<T> = std::result::Result<T, crate::state::StateError>;

/// What the state holds for one partition.
#[derive(Default)]
struct Remembered {
    done: u64,
    unfinished: u64,
    /// The greatest done key.
    newest: Option<String>,
    floor: Option<Date>,
}

/// The state's entries grouped by partition, in partition order.
fn by_partition(state: &State, prefix: &str) -> Result<BTreeMap<Partition, Remembered>> {
    let mut partitions: BTreeMap<Partition, Remembered> = BTreeMap::new();
    for entry in state.entries()? {
        let key = match &entry {
            Entry::Done(key) | Entry::Unfinished { key, .. } => key,
            Entry::Floor { partition, .. } => partition,
        };
        let Some(partition) = layout::partition_of(prefix, key) else {
            continue;
        };
        let remembered = partitions.entry(partition).or_default();
        match entry {
            Entry::Done(key) => {
                remembered.done += 1;
                if remembered.newest.as_ref().is_none_or(|n| *n < key) {
                    remembered.newest = Some(key);
                }
            }
            Entry::Unfinished { .. } => remembered.unfinished += 1,
            Entry::Floor { date, .. } => remembered.floor = date,
        }
    }
    Ok(partitions)
}

fn show(state: &State, target: &Target, path: &Path) -> Result<u8> {
    let prefix = target.prefix();
    let partitions = by_partition(state, &prefix)?;
    println!(
        "state {} ({} bytes on disk), s3://{}/{prefix}:",
        path.display(),
        state.size_on_disk()?,
        target.bucket()
    );
    if partitions.is_empty() {
        println!("  nothing remembered for this bucket and prefix (check --bucket and --prefix)");
    }
    for (partition, remembered) in &partitions {
        let newest = remembered
            .newest
            .as_deref()
            .map(|k| k.strip_prefix(&partition.prefix).unwrap_or(k))
            .unwrap_or("(none yet)");
        println!(
            "  account {}{} region {}",
            partition.account,
            partition
                .org
                .as_deref()
                .map(|o| format!(" (organisation {o})"))
                .unwrap_or_default(),
            partition.region
        );
        println!("    newest printed: {newest}");
        println!(
            "    remembered:     {} keys printed, {} part-printed; listed from {}",
            remembered.done,
            remembered.unfinished,
            remembered
                .floor
                .map(|d| d.to_string())
                .unwrap_or_else(|| "(unknown)".to_owned())
        );
        if let Some(digests) = crate::digest::describe(state, partition)? {
            println!("    digests:        {digests}");
        }
    }
    print_runs(path, target);
    Ok(exit::OK)
}

/// The last runs of this bucket and prefix, newest first: what the agent never shows.
fn print_runs(path: &Path, target: &Target) {
    let runs = History::at(path).runs_of(target.bucket(), &target.prefix());
    if runs.is_empty() {
        println!("  last runs: none remembered");
        return;
    }
    println!(
        "  last runs, newest first (the state keeps the last {} of all its buckets):",
        history::KEPT
    );
    for run in runs.iter().rev() {
        let started = run.started.format(&Rfc3339).unwrap_or_default();
        let mut line = format!(
            "    {started}  {:<9} exit {}  {} lines from {} objects in {:.1}s",
            run.outcome,
            run.exit_code,
            run.lines,
            run.objects,
            run.elapsed_ms as f64 / 1000.0
        );
        if run.failed_objects > 0 {
            line.push_str(&format!(", {} objects failed", run.failed_objects));
        }
        if run.pending_objects > 0 {
            line.push_str(&format!(", {} objects left", run.pending_objects));
        }
        if let Some(lag) = run.lag_seconds {
            line.push_str(&format!(
                " (the oldest delivered {} before)",
                crate::status::human_duration(lag)
            ));
        }
        println!("{line}");
        if let Some(error) = &run.first_error {
            println!("      first error: {error}");
        }
    }
}

fn matches(partition: &Partition, filters: &PartitionFilters) -> bool {
    (filters.accounts.is_empty() || filters.accounts.contains(&partition.account))
        && (filters.regions.is_empty() || filters.regions.contains(&partition.region))
}

fn forget(state: &State, target: &Target, since: Date, filters: &PartitionFilters) -> Result<u8> {
    let partitions = by_partition(state, &target.prefix())?;
    let chosen: Vec<(&Partition, &Remembered)> = partitions
        .iter()
        .filter(|(p, _)| matches(p, filters))
        .collect();
    if chosen.is_empty() {
        let known: Vec<String> = partitions
            .keys()
            .map(|p| format!("{}/{}", p.account, p.region))
            .collect();
        tracing::error!(
            "no partition of s3://{}/{} in the state matches --accounts/--regions; it holds: {}",
            target.bucket(),
            target.prefix(),
            if known.is_empty() {
                "nothing".to_owned()
            } else {
                known.join(", ")
            }
        );
        return Ok(exit::FAILED);
    }
    let mut total = 0;
    for (partition, remembered) in chosen {
        let forgotten = state.forget(&partition.prefix, &partition.day_folder(since))?;
        // A day before the partition's first run: the user asks for history never printed.
        if remembered.floor.is_none_or(|floor| floor > since) {
            state.set_floor(&partition.prefix, since)?;
        }
        println!(
            "account {} region {}: forgot {forgotten} keys",
            partition.account, partition.region
        );
        total += forgotten;
    }
    println!(
        "forgot {total} keys: the next run prints the logs from {since} on again (at most \
         --max-lines per run, so a long range takes several runs)"
    );
    Ok(exit::OK)
}

fn prune(state: &State, target: &Target, lookback_days: u32) -> Result<u8> {
    let partitions: Vec<Partition> = by_partition(state, &target.prefix())?.into_keys().collect();
    let pruned = listing::prune(state, &partitions, lookback_days)?;
    println!(
        "forgot {pruned} keys older than the {lookback_days}-day look-back window of {} \
         partitions ({} bytes on disk)",
        partitions.len(),
        state.size_on_disk()?
    );
    Ok(exit::OK)
}
