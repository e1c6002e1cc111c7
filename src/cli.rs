//! The command line: every option, documented once (these doc comments are `--help`), and
//! its translation into the run's [`Settings`]. Flag names are a contract with ossec.conf
//! files in the field: rename none.

use std::path::PathBuf;

use clap::{ArgAction, Args, FromArgMatches, Parser, Subcommand};
use time::{Date, Duration, OffsetDateTime};

use crate::collect::{DigestSettings, Settings};
use crate::flatten::MIN_LINE_BYTES;
use crate::layout;
use crate::listing::Filters;
use crate::proxy::Proxies;
use crate::s3::{Connection, Role};
use crate::state;

/// The longest line OSSEC's agent keeps as one event (measured: it reads command output in
/// chunks of 5631 bytes, the newline included).
pub const OSSEC_LINE_LIMIT: usize = 5630;
/// The longest line a Wazuh agent keeps as one event.
pub const WAZUH_LINE_LIMIT: usize = 65024;
/// `--role-duration`'s default, STS's own: one hour.
pub const DEFAULT_ROLE_DURATION: u32 = 3600;

/// Exit codes, as documented in `--help`.
pub mod exit {
    /// Success, including "nothing new" and "line budget reached".
    pub const OK: u8 = 0;
    /// The run could not proceed (S3 unreachable, bucket missing, access denied, stdout closed).
    pub const FAILED: u8 = 1;
    /// Bad command line.
    pub const USAGE: u8 = 2;
    /// Partial: some objects or records could not be read; the rest was printed.
    pub const PARTIAL: u8 = 3;
    /// Another run holds the state; this one printed nothing.
    pub const BUSY: u8 = 4;
    /// The state database cannot be read or written.
    pub const STATE: u8 = 5;
    /// `--validate-digests` found log files or digests deleted or altered (everything
    /// readable was printed).
    pub const INTEGRITY: u8 = 6;
}

const AFTER_HELP: &str = "\
Each run prints every CloudTrail record it has not printed before, one compact JSON record a
line on stdout, then exits. Diagnostics go to stderr. Objects are never changed or deleted
in the bucket: the state database remembers what was printed.

New install: `ossec-cloudtrail check --bucket NAME` tries everything a run needs, says what
to fix, and prints the block below with your flags.

OSSEC / Wazuh agent (ossec.conf):
  <localfile>
    <log_format>command</log_format>
    <alias>aws-cloudtrail</alias>
    <command>/usr/bin/ossec-cloudtrail --bucket my-trail-bucket</command>
    <frequency>300</frequency>
  </localfile>

Credentials come from the standard AWS chain only: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,
AWS_PROFILE or --profile (incl. SSO and credential_process), web identity, ECS/EKS and EC2
instance roles; --role-arn assumes a role with them (the bucket in another account). The
reader needs s3:ListBucket and s3:GetObject on the trail bucket, and kms:Decrypt when the
trail is encrypted with a KMS key. Proxies: HTTPS_PROXY, HTTP_PROXY and NO_PROXY as the AWS
CLI reads them, or --proxy.

Exit codes:
  0  success, also when there was nothing new or the line budget was reached
  1  the run failed (bucket missing, access denied, S3 unreachable, stdout closed)
  2  bad command line
  3  partial: some objects or records could not be read (named on stderr); the rest was
     printed, and failed objects are retried by the next run
  4  another run is using the state; this run printed nothing
  5  the state database cannot be read or written
  6  --validate-digests found log files or digests deleted or altered (each is also a
     status event on stdout); everything readable was printed";

/// `--version`: the version and the git commit it was built from (see build.rs).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("OSSEC_CLOUDTRAIL_COMMIT"),
    ")"
);

/// Brings AWS CloudTrail logs from an S3 bucket into OSSEC and Wazuh.
///
/// Without a subcommand, runs the collector once (the job the agent runs); the subcommands
/// help set it up and look after it.
#[derive(Debug, Parser)]
#[command(
    name = "ossec-cloudtrail",
    version = VERSION,
    after_help = AFTER_HELP,
    subcommand_negates_reqs = true,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub target: Target,

    #[command(flatten)]
    pub run: RunOptions,

    #[command(flatten)]
    pub verbosity: Verbosity,
}

/// Which trail and which state: the flags every command shares, with the same meaning.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// The S3 bucket the trail delivers to (its name alone, not an s3:// URL).
    // An Option only so that a subcommand can leave the main job's copy empty; clap still
    // demands it wherever it is parsed.
    #[arg(long, value_name = "NAME", value_parser = parse_bucket, required = true)]
    pub bucket: Option<String>,

    /// The trail's S3 key prefix: whatever comes before `AWSLogs/` in its keys.
    #[arg(long, value_name = "P")]
    pub prefix: Option<String>,

    /// AWS region of the bucket [default: from AWS_REGION or the profile, else us-east-1;
    /// a bucket found in another region is followed, with a warning].
    #[arg(long, value_name = "R")]
    pub region: Option<String>,

    /// Named profile from ~/.aws/config and ~/.aws/credentials.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,

    /// Talk to this S3-compatible endpoint instead of AWS (MinIO, Ceph, a test server);
    /// uses path-style addressing.
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,

    /// Assume this IAM role (its ARN) with the credentials the standard chain finds, and make
    /// every request (S3, SQS) as that role: the usual cross-account layout, where a
    /// log-archive account owns the trail bucket and a reader role in it. The role's trust
    /// policy must allow the chain's identity sts:AssumeRole (`check` shows both identities).
    /// With --endpoint-url, STS is asked there too.
    #[arg(long, value_name = "ARN", value_parser = parse_role_arn)]
    pub role_arn: Option<String>,

    /// The external id the role's trust policy asks for (its sts:ExternalId condition).
    #[arg(long, value_name = "ID", requires = "role_arn", value_parser = parse_external_id)]
    pub external_id: Option<String>,

    /// The name of the role session, which CloudTrail records in the role's account
    /// [default: ossec-cloudtrail-HOSTNAME].
    #[arg(long, value_name = "NAME", requires = "role_arn", value_parser = parse_session_name)]
    pub role_session_name: Option<String>,

    /// How long the role's credentials last, in seconds: 900 to 43200, and at most the role's
    /// maximum session duration. A run renews them before they expire.
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_ROLE_DURATION,
          requires = "role_arn", value_parser = clap::value_parser!(u32).range(900..=43200))]
    pub role_duration: u32,

    /// Send every request (S3, STS, SQS, credential endpoints) through this HTTP proxy,
    /// http://[USER:PASSWORD@]HOST:PORT; hosts in NO_PROXY still bypass it. A password here
    /// shows in the process list to every local user: prefer HTTPS_PROXY in the agent's
    /// environment [default: as the AWS CLI, HTTPS_PROXY for https:// requests and HTTP_PROXY
    /// for http:// ones (each also lowercase, which wins), except the hosts, domains and
    /// address ranges in NO_PROXY].
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,

    /// Directory of the state database (created with mode 0700) [default:
    /// /var/lib/ossec-cloudtrail when it exists and is writable, as after installing the
    /// package; else /var/ossec/var/ossec-cloudtrail when /var/ossec/var is writable, as on an
    /// OSSEC or Wazuh agent; else $XDG_STATE_HOME/ossec-cloudtrail, i.e.
    /// ~/.local/state/ossec-cloudtrail].
    #[arg(long, value_name = "PATH")]
    pub state: Option<PathBuf>,
}

impl Target {
    pub fn bucket(&self) -> &str {
        self.bucket
            .as_deref()
            .expect("clap requires --bucket wherever a Target is parsed")
    }

    /// Normalized: empty, or ending in `/`.
    pub fn prefix(&self) -> String {
        layout::normalize_prefix(self.prefix.as_deref().unwrap_or(""))
    }

    /// How to reach the bucket; fails when `--proxy` or the proxy environment is no proxy
    /// URL (the message masks its password, which is why clap does not check it).
    pub fn connection(&self) -> Result<Connection, String> {
        Ok(Connection {
            region: self.region.clone(),
            profile: self.profile.clone(),
            endpoint_url: self.endpoint_url.clone(),
            role: self.role(),
            proxies: Proxies::resolve(self.proxy.as_deref())?,
        })
    }

    /// `--role-arn` with its companions, the session named after this host by default.
    pub fn role(&self) -> Option<Role> {
        Some(Role {
            arn: self.role_arn.clone()?,
            external_id: self.external_id.clone(),
            session_name: self
                .role_session_name
                .clone()
                .unwrap_or_else(default_session_name),
            duration_seconds: self.role_duration,
        })
    }

    /// The shared flags given, as command-line words for the agent's `<command>` (a proxy's
    /// password masked: see [`crate::proxy::mask`]).
    pub fn agent_flags(&self) -> Vec<String> {
        let mut words = Vec::new();
        let flags: [(&str, Option<String>); 11] = [
            ("--bucket", self.bucket.clone()),
            ("--prefix", self.prefix.clone()),
            ("--region", self.region.clone()),
            ("--profile", self.profile.clone()),
            ("--endpoint-url", self.endpoint_url.clone()),
            ("--role-arn", self.role_arn.clone()),
            ("--external-id", self.external_id.clone()),
            ("--role-session-name", self.role_session_name.clone()),
            (
                "--role-duration",
                (self.role_duration != DEFAULT_ROLE_DURATION)
                    .then(|| self.role_duration.to_string()),
            ),
            ("--proxy", self.proxy.as_deref().map(crate::proxy::mask)),
            (
                "--state",
                self.state.as_ref().map(|p| p.display().to_string()),
            ),
        ];
        for (flag, value) in flags {
            if let Some(value) = value {
                words.push(flag.to_owned());
                words.push(value);
            }
        }
        words
    }

    /// `--state`, or the default location; fails only when there is none (no HOME).
    pub fn state_path(&self) -> Result<PathBuf, String> {
        match &self.state {
            Some(path) => Ok(path.clone()),
            None => state::default_path().ok_or_else(|| {
                "cannot choose a state directory (no HOME): pass --state PATH".to_owned()
            }),
        }
    }
}

/// Which partitions to look at.
#[derive(Debug, Clone, Args)]
pub struct PartitionFilters {
    /// Only these account ids (comma-separated).
    #[arg(long, value_name = "ID[,ID...]", value_delimiter = ',', value_parser = parse_account)]
    pub accounts: Vec<String>,

    /// Only these regions (comma-separated). A run given regions skips region discovery.
    #[arg(long, value_name = "R[,R...]", value_delimiter = ',', value_parser = parse_region)]
    pub regions: Vec<String>,
}

impl PartitionFilters {
    pub fn filters(&self) -> Filters {
        Filters {
            accounts: self.accounts.clone(),
            regions: self.regions.clone(),
        }
    }
}

/// How far back each run lists again.
#[derive(Debug, Clone, Args)]
pub struct Lookback {
    /// Days before a partition's newest printed day that each run lists again, to catch
    /// files that CloudTrail delivers late.
    #[arg(long, value_name = "DAYS", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=31))]
    pub lookback_days: u32,
}

/// The main job's own options.
#[derive(Debug, Clone, Args)]
pub struct RunOptions {
    /// Ignore logs before this day (UTC). Without it, a partition seen for the first time
    /// starts yesterday, so a new install does not flood the manager with old history.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub only_logs_after: Option<Date>,

    #[command(flatten)]
    pub filters: PartitionFilters,

    /// Receive S3 event notifications from this SQS queue instead of listing the bucket: for
    /// large organisation trails, and for several agents sharing the work (SQS gives each
    /// message to one of them). Understands S3 event notifications (also inside SNS), EventBridge
    /// "Object Created" events and CloudTrail's own SNS notifications. A message is deleted only
    /// after all its records were printed; one whose object cannot be read stays for the
    /// queue's dead-letter queue. --endpoint-url, --region and --profile apply to the queue too
    /// (an AWS queue URL names its own region). --only-logs-after and --lookback-days do not
    /// apply: backfill history with a polling run (without this flag).
    #[arg(long, value_name = "URL")]
    pub sqs_queue_url: Option<String>,

    /// Most lines one run prints. Wazuh reads at most 10000 lines of one command run and
    /// its agent buffer drops bursts; the next run resumes exactly where this one stopped.
    #[arg(long, value_name = "N", default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_lines: u64,

    /// Longest line printed, in bytes. Larger records are trimmed, bulkiest parts first, and
    /// marked `ossecTrimmed`. 5630 is the longest line an OSSEC agent sends as one event (it
    /// reads command output in chunks of 5631 bytes, newline included: a longer line arrives
    /// as two events, half a JSON record each). A Wazuh agent keeps 65024 bytes: Wazuh users
    /// may raise it up to that; a value above OSSEC's limit is used, with a warning.
    #[arg(long, value_name = "N", default_value_t = OSSEC_LINE_LIMIT, value_parser = parse_line_bytes)]
    pub max_line_bytes: usize,

    /// Most lines printed per second, so that a full run never reaches the agent as one burst
    /// (0: no limit). A stock Wazuh agent sends at most 500 events per second and buffers
    /// 5000 (client_buffer), dropping what comes beyond: the default takes half of that
    /// rate and leaves the rest to the agent's other logs. A full run of 5000 lines then takes
    /// 20 seconds. Lines are flushed as they are paced; an object is still recorded only
    /// after all its lines were written and flushed.
    #[arg(long, value_name = "LINES_PER_SECOND", default_value_t = 250)]
    pub max_rate: u32,

    /// Also verify CloudTrail's signed digest files (the trail's "log file validation"): each
    /// log file a digest lists must be in the bucket with the SHA-256 the digest recorded (the
    /// collector hashes files as it prints them: nothing is downloaded twice), each digest's
    /// signature must verify with CloudTrail's public key, and its chain must hold. A log file
    /// deleted or altered, a digest missing, invalid or out of chain, or logs without a digest
    /// for two hours each become one status event (alerts of level 12; 10 for late digests),
    /// reported once. Records are printed whether or not their digest came yet (it comes up
    /// to an hour later): later runs catch up. Polling only (not with --sqs-queue-url). Needs
    /// cloudtrail:ListPublicKeys, or --digest-public-keys.
    #[arg(long, conflicts_with = "sqs_queue_url")]
    pub validate_digests: bool,

    /// CloudTrail's public keys for --validate-digests from this file (what `aws cloudtrail
    /// list-public-keys --region HOME_REGION --output json` prints) instead of asking
    /// CloudTrail: for agents that may not call it. Refresh it when CloudTrail rotates keys.
    #[arg(long, value_name = "FILE", requires = "validate_digests")]
    pub digest_public_keys: Option<PathBuf>,

    /// Print no status events. By default a run that fails, is partial, finds no logs or
    /// falls behind its line budget also prints one line saying so on stdout, and the first
    /// good run after failing ones says it recovered: a JSON object whose single member is
    /// "ossecCloudtrail", with the kind, bucket, prefix, message and exit code. Under the
    /// agent, stderr and the exit code reach nobody; these lines reach the manager, whose
    /// rules (ossec-conf/) raise alerts for them.
    #[arg(long)]
    pub no_status_events: bool,

    /// Print what would be printed, change nothing in the state.
    #[arg(long)]
    pub dry_run: bool,

    #[command(flatten)]
    pub lookback: Lookback,

    /// Downloads in flight at once.
    #[arg(long, value_name = "N", default_value_t = 16,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
}

impl RunOptions {
    /// The main-job flags that differ from their defaults, as command-line words, for the
    /// agent's `<command>`. `--dry-run` is refused: an agent running a dry run would print the
    /// same records at every run.
    pub fn agent_flags(&self) -> Result<Vec<String>, String> {
        if self.dry_run {
            return Err(
                "--dry-run has no place in the agent's command: it would print the same \
                        records at every run; leave it out"
                    .to_owned(),
            );
        }
        // The defaults, from the same definitions as --help, so they are written down once.
        let defaults = RunOptions::from_arg_matches(
            &RunOptions::augment_args(clap::Command::new("defaults")).get_matches_from(["x"]),
        )
        .expect("the defaults parse");
        let mut words = Vec::new();
        let mut flag = |name: &str, value: String| {
            words.push(name.to_owned());
            words.push(value);
        };
        if let Some(day) = self.only_logs_after {
            flag("--only-logs-after", day.to_string());
        }
        if !self.filters.accounts.is_empty() {
            flag("--accounts", self.filters.accounts.join(","));
        }
        if !self.filters.regions.is_empty() {
            flag("--regions", self.filters.regions.join(","));
        }
        if let Some(url) = &self.sqs_queue_url {
            flag("--sqs-queue-url", url.clone());
        }
        if self.max_lines != defaults.max_lines {
            flag("--max-lines", self.max_lines.to_string());
        }
        if self.max_line_bytes != defaults.max_line_bytes {
            flag("--max-line-bytes", self.max_line_bytes.to_string());
        }
        if self.max_rate != defaults.max_rate {
            flag("--max-rate", self.max_rate.to_string());
        }
        if self.lookback.lookback_days != defaults.lookback.lookback_days {
            flag("--lookback-days", self.lookback.lookback_days.to_string());
        }
        if self.concurrency != defaults.concurrency {
            flag("--concurrency", self.concurrency.to_string());
        }
        if self.no_status_events {
            words.push("--no-status-events".to_owned());
        }
        if self.validate_digests {
            words.push("--validate-digests".to_owned());
        }
        if let Some(file) = &self.digest_public_keys {
            words.push("--digest-public-keys".to_owned());
            words.push(file.display().to_string());
        }
        Ok(words)
    }
}

/// How much goes to stderr. Given to a subcommand, these come after its name, as its other
/// flags do: the main job's flags and a subcommand exclude each other.
#[derive(Debug, Clone, Args)]
pub struct Verbosity {
    /// More detail on stderr (-v: each listing and object, -vv: also the AWS SDK).
    #[arg(short, long, action = ArgAction::Count, conflicts_with = "quiet", global = true)]
    pub verbose: u8,

    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

impl Verbosity {
    /// The log filter for stderr; `RUST_LOG` wins when set.
    pub fn log_filter(&self) -> &'static str {
        match (self.quiet, self.verbose) {
            (true, _) => "error",
            // aws_config warns about every credential and region source it probes.
            (false, 0) => "warn,aws_config=error,ossec_cloudtrail=info",
            (false, 1) => "warn,ossec_cloudtrail=debug",
            (false, _) => "debug,ossec_cloudtrail=trace,hyper=info,h2=info,rustls=info",
        }
    }
}

/// The everyday commands beside the main job.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Checks a new install: what works, what does not, and what to do about it.
    ///
    /// Tries in order what a run needs and says in plain words how each step went: the
    /// credentials found (their identity ARN, never a secret), the bucket and its region, the
    /// trail's accounts, organisations and regions, reading and decompressing one recent
    /// object (a missing s3:GetObject or kms:Decrypt shows here), the state; with
    /// --sqs-queue-url, the queue as well. Ends with the ossec.conf block to paste. Exit code
    /// 0 only when a real run would work.
    Check {
        #[command(flatten)]
        target: Target,
        /// Check the SQS queue the runs will receive from (the main job's --sqs-queue-url) too:
        /// that it is reachable, its visibility timeout, whether it has a dead-letter queue
        /// (RedrivePolicy; without one, a message whose object cannot be read comes back
        /// forever), and the permissions a run needs on it: sqs:GetQueueAttributes,
        /// sqs:ReceiveMessage and sqs:ChangeMessageVisibility (at most one message is received
        /// and made visible again at once, which counts as one of its receives) and
        /// sqs:DeleteMessage (tried with a made-up receipt handle: nothing is deleted). Runs
        /// with a queue do not need s3:ListBucket, so a denied listing is then only a note.
        /// The block printed at the end receives from this queue.
        #[arg(long, value_name = "URL")]
        sqs_queue_url: Option<String>,
        #[command(flatten)]
        agent: AgentOptions,
    },
    /// Shows what the state remembers, or makes it forget.
    #[command(subcommand)]
    State(StateCommand),
    /// Prints the ossec.conf `<localfile>` block that runs the collector with these flags.
    ///
    /// Takes the main job's flags too; those given (other than their defaults) go into the
    /// block's `<command>`. For Wazuh, which keeps longer lines, add `--max-line-bytes 65000`.
    OssecConf {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        run: RunOptions,
        #[command(flatten)]
        agent: AgentOptions,
    },
    /// Writes the man pages and shell completions into a directory (used by packaging).
    #[command(hide = true)]
    GenerateDocs {
        /// The directory to write into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

/// What the agent's `<localfile>` block says besides the command.
#[derive(Debug, Clone, Args)]
pub struct AgentOptions {
    /// Seconds between two runs by the agent (`<frequency>`).
    #[arg(long, value_name = "SECONDS", default_value_t = 300,
          value_parser = clap::value_parser!(u32).range(60..))]
    pub frequency: u32,
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Tells per partition what the state remembers.
    ///
    /// For each partition (account and region): the newest key printed, how many keys are
    /// remembered, the day it was first listed from, and the database's size on disk. Then
    /// the last runs (the state keeps 20): when, how they ended, lines and objects, objects
    /// failed or left for the next run, how far behind, and the first error, which under an
    /// agent nobody else sees. Shown even when the database cannot be read.
    Show {
        #[command(flatten)]
        target: Target,
    },
    /// Forgets what was printed from a day on, so that the next runs print it again.
    ///
    /// A "reparse": the next runs print the logs from that day on again, at most --max-lines
    /// each. A day before a partition's first run also moves its start back.
    Forget {
        #[command(flatten)]
        target: Target,
        /// The first day (UTC) to print again.
        #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
        since: Date,
        #[command(flatten)]
        filters: PartitionFilters,
    },
    /// Forgets keys older than each partition's look-back window.
    ///
    /// No run lists those keys again; every run already does this for the partitions it
    /// saw, so this is only needed for partitions no longer collected.
    Prune {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        lookback: Lookback,
    },
}

impl Cli {
    /// The main job's settings; fails only when no state location can be found.
    pub fn settings(&self) -> Result<Settings, String> {
        let target = &self.target;
        let run = &self.run;
        Ok(Settings {
            bucket: target.bucket().to_owned(),
            prefix: target.prefix(),
            connection: target.connection()?,
            state_path: target.state_path()?,
            only_logs_after: run.only_logs_after,
            default_start: OffsetDateTime::now_utc().date() - Duration::days(1),
            filters: run.filters.filters(),
            sqs_queue_url: run.sqs_queue_url.clone(),
            digests: run.validate_digests.then(|| DigestSettings {
                public_keys: run.digest_public_keys.clone(),
            }),
            max_lines: run.max_lines,
            max_line_bytes: run.max_line_bytes,
            max_rate: run.max_rate,
            status_events: !run.no_status_events,
            dry_run: run.dry_run,
            lookback_days: run.lookback.lookback_days,
            concurrency: run.concurrency.into(),
        })
    }
}

fn parse_bucket(s: &str) -> Result<String, String> {
    if let Some(path) = s.strip_prefix("s3://") {
        let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
        return Err(format!(
            "give the bucket name alone: --bucket {bucket}{}",
            if prefix.trim_matches('/').is_empty() {
                String::new()
            } else {
                format!(" --prefix {}", prefix.trim_matches('/'))
            }
        ));
    }
    if s.is_empty() || s.contains(['/', ' ']) {
        return Err("a bucket name has no '/' or spaces (put a key prefix in --prefix)".to_owned());
    }
    Ok(s.to_owned())
}

fn parse_date(s: &str) -> Result<Date, String> {
    Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
        .map_err(|e| format!("expected a day as YYYY-MM-DD ({e})"))
}

fn parse_account(s: &str) -> Result<String, String> {
    let s = s.trim();
    if layout::is_account_id(s) {
        Ok(s.to_owned())
    } else {
        Err("an AWS account id is 12 digits".to_owned())
    }
}

fn parse_region(s: &str) -> Result<String, String> {
    let s = s.trim();
    if layout::is_region(s) {
        Ok(s.to_owned())
    } else {
        Err("expected a region name such as us-east-1".to_owned())
    }
}

fn parse_line_bytes(s: &str) -> Result<usize, String> {
    let n: usize = s.parse().map_err(|e| format!("{e}"))?;
    if (MIN_LINE_BYTES..=16 * 1024 * 1024).contains(&n) {
        Ok(n)
    } else {
        Err(format!(
            "must be between {MIN_LINE_BYTES} (room for the fields always kept) and 16777216"
        ))
    }
}

fn parse_role_arn(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.starts_with("arn:") && s.contains(":iam::") && s.contains(":role/") && s.len() <= 2048 {
        Ok(s.to_owned())
    } else {
        Err(
            "expected a role's ARN, such as arn:aws:iam::111122223333:role/cloudtrail-reader"
                .into(),
        )
    }
}

/// STS's characters for session names (`[\w+=,.@-]`); external ids may also hold `:` and `/`.
fn sts_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

fn parse_external_id(s: &str) -> Result<String, String> {
    if (2..=1224).contains(&s.len()) && s.chars().all(|c| sts_char(c) || c == ':' || c == '/') {
        Ok(s.to_owned())
    } else {
        Err("STS takes 2 to 1224 characters: letters, digits and _+=,.@:/-".to_owned())
    }
}

fn parse_session_name(s: &str) -> Result<String, String> {
    if (2..=64).contains(&s.len()) && s.chars().all(sts_char) {
        Ok(s.to_owned())
    } else {
        Err("STS takes 2 to 64 characters: letters, digits and _+=,.@-".to_owned())
    }
}

/// `ossec-cloudtrail-HOSTNAME`, in the characters and length STS takes for a session name,
/// so that the role's account can tell which agent read its logs.
fn default_session_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    session_name_for(host.trim())
}

fn session_name_for(host: &str) -> String {
    let mut name = String::from("ossec-cloudtrail");
    if !host.is_empty() {
        name.push('-');
        name.extend(host.chars().map(|c| if sts_char(c) { c } else { '-' }));
    }
    name.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_the_documented_flags() {
        let cli = Cli::try_parse_from([
            "ossec-cloudtrail",
            "--bucket",
            "b",
            "--prefix",
            "/logs/",
            "--accounts",
            "111122223333,444455556666",
            "--regions",
            "us-east-1",
            "--only-logs-after",
            "2026-11-01",
            "--max-lines",
            "10",
            "--max-line-bytes",
            "65024",
            "--dry-run",
            "--state",
            "/tmp/s",
        ])
        .unwrap();
        let s = cli.settings().unwrap();
        assert_eq!(s.prefix, "logs/");
        assert_eq!(s.filters.accounts, ["111122223333", "444455556666"]);
        assert_eq!(s.only_logs_after, Some(time::macros::date!(2026 - 11 - 01)));
        assert_eq!(
            (s.max_lines, s.max_line_bytes, s.dry_run),
            (10, 65024, true)
        );
    }

    #[test]
    fn rejects_bad_values_with_a_reason() {
        for (flag, value) in [
            ("--accounts", "1234"),
            ("--regions", "US_EAST"),
            ("--only-logs-after", "2026-13-01"),
            ("--max-line-bytes", "100"),
            ("--max-lines", "0"),
            ("--bucket", "s3://trail/logs/"),
        ] {
            let err = Cli::try_parse_from(["ossec-cloudtrail", "--bucket", "b", flag, value])
                .expect_err(flag);
            assert_eq!(err.exit_code(), i32::from(exit::USAGE), "{flag}");
        }
        let err = Cli::try_parse_from(["x", "--bucket", "s3://trail/logs/"]).unwrap_err();
        assert!(
            err.to_string().contains("--bucket trail --prefix logs"),
            "{err}"
        );
    }
    #[test]
    fn role_flags_need_a_role_and_sts_values() {
        for args in [
            &["--external-id", "abc123"][..],
            &["--role-session-name", "reader"],
            &["--role-duration", "900"],
            &["--role-arn", "arn:aws:s3:::bucket"],
            &[
                "--role-arn",
                "arn:aws:iam::111122223333:role/r",
                "--role-duration",
                "899",
            ],
            &[
                "--role-arn",
                "arn:aws:iam::111122223333:role/r",
                "--role-duration",
                "43201",
            ],
            &[
                "--role-arn",
                "arn:aws:iam::111122223333:role/r",
                "--role-session-name",
                "a b",
            ],
            &[
                "--role-arn",
                "arn:aws:iam::111122223333:role/r",
                "--external-id",
                "x",
            ],
        ] {
            let err = Cli::try_parse_from(["x", "--bucket", "b"].iter().chain(args))
                .expect_err(&args.join(" "));
            assert_eq!(err.exit_code(), i32::from(exit::USAGE), "{args:?}");
        }
        let cli = Cli::try_parse_from([
            "x",
            "--bucket",
            "b",
            "--role-arn",
            "arn:aws:iam::111122223333:role/r",
            "--external-id",
            "Ext-Id_1",
        ])
        .unwrap();
        let role = cli.target.role().unwrap();
        assert_eq!(
            (role.external_id.as_deref(), role.duration_seconds),
            (Some("Ext-Id_1"), 3600)
        );
        assert!(
            role.session_name.starts_with("ossec-cloudtrail"),
            "{role:?}"
        );
        assert_eq!(
            cli.target.agent_flags(),
            [
                "--bucket",
                "b",
                "--role-arn",
                "arn:aws:iam::111122223333:role/r",
                "--external-id",
                "Ext-Id_1"
            ]
        );
    }

    #[test]
    fn the_default_session_name_is_what_sts_takes() {
        assert_eq!(
            session_name_for("agent-01.example.com"),
            "ossec-cloudtrail-agent-01.example.com"
        );
        assert_eq!(session_name_for(""), "ossec-cloudtrail");
        let long = session_name_for(&"h\u{e9}st/".repeat(30));
        assert_eq!(long.chars().count(), 64);
        assert!(parse_session_name(&long).is_ok(), "{long}");
    }
}
