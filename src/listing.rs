//! The polling source, the default: discovers the trail's partitions (organisation, account,
//! region) with delimiter listings, then lists each partition from its start date only,
//! keeping the log files that the state does not hold as done, and feeds them to the
//! `pipeline`. `sqs` is the other source, beside this one.
//!
//! Never lists the whole bucket: an idle run costs the discovery listings plus one listing per
//! partition. It does not download anything (that is `pipeline`), nor decide how keys look
//! (that is `layout`).

use std::io::Write;
use std::sync::Arc;

use futures::stream::{self, StreamExt, TryStreamExt};
use time::{Date, Duration};

use crate::collect::{RunError, Settings, Summary};
use crate::layout::{self, Partition};
use crate::pipeline::{self, Pending};
use crate::s3::{Bucket, S3Error, S3ErrorKind};
use crate::state::{State, StateError};

/// Listings in flight at once during discovery and partition listing.
const LIST_CONCURRENCY: usize = 8;

/// Which partitions to look at.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
}

#[derive(Debug)]
pub enum ListError {
    S3(S3Error),
    State(StateError),
}

impl From<S3Error> for ListError {
    fn from(e: S3Error) -> Self {
        ListError::S3(e)
    }
}

impl From<StateError> for ListError {
    fn from(e: StateError) -> Self {
        ListError::State(e)
    }
}

/// What lies directly under `prefix` (folders, then a few keys): a hint for a user whose
/// `--bucket` or `--prefix` leads to no CloudTrail logs.
pub async fn what_is_under(bucket: &Bucket, prefix: &str) -> Result<Vec<String>, S3Error> {
    const SHOWN: usize = 5;
    let page = bucket.list_page(prefix, true, None, None).await?;
    Ok(page
        .folders
        .into_iter()
        .chain(page.objects.into_iter().map(|o| o.key))
        .take(SHOWN)
        .collect())
}

/// The partitions under `prefix`, sorted, after the filters.
pub async fn discover(
    bucket: &Bucket,
    prefix: &str,
    filters: &Filters,
) -> Result<Vec<Partition>, S3Error> {
    let root = layout::awslogs_prefix(prefix);
    let mut accounts: Vec<(String, Option<String>, String)> = Vec::new();
    let mut orgs = Vec::new();
    for folder in bucket.list_folders(&root).await? {
        let name = layout::last_segment(&folder).to_owned();
        if layout::is_account_id(&name) {
            accounts.push((folder, None, name));
        } else if layout::is_org_id(&name) {
            orgs.push((folder, name));
        } else {
            tracing::debug!("skipping {folder}: neither an account nor an organisation id");
        }
    }
    let org_accounts: Vec<Vec<(String, Option<String>, String)>> = stream::iter(orgs)
        .map(|(folder, org)| async move {
            let members = bucket.list_folders(&folder).await?;
            Ok::<_, S3Error>(
                members
                    .into_iter()
                    .filter_map(|f| {
                        let account = layout::last_segment(&f).to_owned();
                        layout::is_account_id(&account).then(|| (f, Some(org.clone()), account))
                    })
                    .collect(),
            )
        })
        .buffered(LIST_CONCURRENCY)
        .try_collect()
        .await?;
    accounts.extend(org_accounts.into_iter().flatten());
    accounts.retain(|(_, _, account)| {
        filters.accounts.is_empty() || filters.accounts.contains(account)
    });

    let per_account: Vec<Vec<Partition>> = stream::iter(accounts)
        .map(|(folder, org, account)| async move {
            let regions = if filters.regions.is_empty() {
                let trail = format!("{folder}CloudTrail/");
                bucket
                    .list_folders(&trail)
                    .await?
                    .iter()
                    .map(|f| layout::last_segment(f).to_owned())
                    .filter(|r| layout::is_region(r))
                    .collect()
            } else {
                // Named regions need no discovery: an absent one lists as empty.
                filters.regions.clone()
            };
            Ok::<_, S3Error>(
                regions
                    .iter()
                    .map(|region| Partition::new(&folder, org.as_deref(), &account, region))
                    .collect(),
            )
        })
        .buffered(LIST_CONCURRENCY)
        .try_collect()
        .await?;
    let mut partitions: Vec<Partition> = per_account.into_iter().flatten().collect();
    partitions.sort();
    partitions.dedup();
    Ok(partitions)
}

/// Where listing a partition starts: the look-back window before its newest done key, never
/// before its floor (the first date this state ever listed it from, or `--only-logs-after`).
pub fn start_date(
    state: &State,
    partition: &Partition,
    explicit_floor: Option<Date>,
    default_floor: Date,
    lookback_days: u32,
) -> Result<Date, StateError> {
    let stored = state.floor(&partition.prefix)?;
    if stored.is_none() {
        state.set_floor(&partition.prefix, explicit_floor.unwrap_or(default_floor))?;
    }
    let floor = explicit_floor.or(stored).unwrap_or(default_floor);
    Ok(match window_start(state, partition, lookback_days)? {
        Some(date) => date.max(floor),
        None => floor,
    })
}

/// The first day of a partition's look-back window: `lookback_days` before the day of its
/// newest done key (`None` before anything of it was printed). Keys before it are never
/// listed again, so the state may forget them.
pub fn window_start(
    state: &State,
    partition: &Partition,
    lookback_days: u32,
) -> Result<Option<Date>, StateError> {
    let newest = state.newest_done(&partition.prefix)?;
    Ok(newest
        .as_deref()
        .and_then(|key| partition.log_file(key))
        .map(|file| file.date - Duration::days(lookback_days.into())))
}

/// The log files of `partition` from `start` on that are not done, in key order.
pub async fn list_new(
    bucket: &Bucket,
    state: &State,
    partition: &Partition,
    start: Date,
) -> Result<Vec<Pending>, ListError> {
    // StartAfter the folder name itself: the folder's first key sorts right after it.
    let start_after = partition.day_folder(start);
    let mut pending = Vec::new();
    for object in bucket.list_after(&partition.prefix, &start_after).await? {
        let Some(file) = partition.log_file(&object.key) else {
            tracing::debug!("skipping {}: not a CloudTrail log file", object.key);
            continue;
        };
        if object.size == 0 || state.is_done(&object.key)? {
            continue;
        }
        pending.push(Pending {
            resume_from: state.resume_from(&object.key)?,
            date: file.date,
            stamp: file.stamp.to_owned(),
            size: object.size,
            key: object.key,
        });
    }
    tracing::debug!(
        "{}: {} new objects from {start}",
        partition.prefix,
        pending.len()
    );
    Ok(pending)
}

/// Lists every partition (a few at a time) and merges their files into one queue ordered by
/// delivery time: each partition's own files stay in key order, and a line budget is spread
/// fairly over partitions instead of draining one before the next.
pub async fn queue(
    bucket: &Bucket,
    state: &State,
    partitions: &[Partition],
    starts: &[Date],
) -> Result<Vec<Pending>, ListError> {
    let lists: Vec<Vec<Pending>> = stream::iter(partitions.iter().zip(starts))
        .map(|(partition, start)| list_new(bucket, state, partition, *start))
        .buffered(LIST_CONCURRENCY)
        .try_collect()
        .await?;
    let mut all: Vec<Pending> = lists.into_iter().flatten().collect();
    all.sort_by(|a, b| (a.date, &a.stamp, &a.key).cmp(&(b.date, &b.stamp, &b.key)));
    Ok(all)
}

/// The polling run: discovers the partitions, lists each from its start date, and feeds what
/// is new to the pipeline in delivery order; then forgets keys out of the look-back window.
pub async fn collect<W, F>(
    settings: &Settings,
    mut bucket: Bucket,
    state: State,
    make_out: F,
) -> Result<Summary, RunError>
where
    W: Write,
    F: Fn() -> W + Clone + Send + 'static,
{
    let partitions = match discover(&bucket, &settings.prefix, &settings.filters).await {
        Err(S3Error {
            kind: S3ErrorKind::WrongRegion(Some(region)),
            ..
        // Followed with --endpoint-url too: S3-compatible stores and proxies answer the same
        // redirect, and the region they name is the one to sign for.
        }) if settings.connection.region.is_none() => {
            tracing::warn!(
                "bucket {} is in {region}, not {}: following it (pass --region {region} to save this detour)",
                settings.bucket,
                bucket.region()
            );
            bucket = bucket.in_region(&region);
            discover(&bucket, &settings.prefix, &settings.filters).await?
        }
        other => other?,
    };
    let mut no_logs = None;
    if partitions.is_empty() {
        let found = what_is_under(&bucket, &settings.prefix).await?;
        let message = format!(
            "no CloudTrail logs under s3://{}/{}AWSLogs/ (check --bucket, --prefix and the filters); {}",
            settings.bucket,
            settings.prefix,
            if found.is_empty() {
                format!("s3://{}/{} is empty", settings.bucket, settings.prefix)
            } else {
                format!("it holds: {}", found.join(", "))
            }
        );
        tracing::warn!("{message}");
        no_logs = Some(message);
    }
    let starts = partitions
        .iter()
        .map(|p| {
            start_date(
                &state,
                p,
                settings.only_logs_after,
                settings.default_start,
                settings.lookback_days,
            )
        })
        .collect::<Result<Vec<Date>, _>>()?;
    let queue = queue(&bucket, &state, &partitions, &starts).await?;
    crate::progress::start(queue.len() as u64);
    tracing::info!(
        "{} partitions, {} objects to print",
        partitions.len(),
        queue.len()
    );

    let state = Arc::new(state);
    let (mut summary, _) = pipeline::print_queue(
        settings,
        &bucket,
        state.clone(),
        queue,
        settings.max_lines,
        make_out.clone(),
    )
    .await?;
    summary.partitions = partitions.len();
    summary.no_logs = no_logs;
    if settings.digests.is_some() {
        let mut out = make_out();
        let report = crate::digest::verify(
            settings,
            &bucket,
            &state,
            &partitions,
            summary.budget_reached,
            &mut out,
        )
        .await?;
        summary.failed_objects += report.failed;
        for error in &report.errors {
            if summary.errors.len() < crate::collect::ERRORS_KEPT {
                summary.errors.push(error.clone());
            }
        }
        summary.digests = Some(report);
    }
    if !settings.dry_run {
        summary.pruned = prune(&state, &partitions, settings.lookback_days)?;
        tracing::debug!(
            "state: forgot {} keys older than the look-back window",
            summary.pruned
        );
    }
    Ok(summary)
}

/// Forgets done keys that fell out of every partition's look-back window.
pub fn prune(
    state: &State,
    partitions: &[Partition],
    lookback_days: u32,
) -> Result<usize, StateError> {
    let mut pruned = 0;
    for partition in partitions {
        if let Some(start) = window_start(state, partition, lookback_days)? {
            pruned += state.prune(&partition.prefix, &partition.day_folder(start))?;
            pruned += state.prune_digests(
                &partition.digest_prefix(),
                &partition.digest_day_folder(start),
            )?;
        }
    }
    Ok(pruned)
}
