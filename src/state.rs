//! What was printed, kept across runs: which keys are done, how far into an unfinished key the
//! last run got, and from which date each partition started.
//!
//! The state is a directory holding a lock file and a sled database, with one sled tree per
//! bucket and prefix. Everything sled-specific stays in this module. Writes are flushed to
//! disk before the write call returns: callers write to stdout first, then record it here, so a
//! run killed at any point re-sends at most the object it was in. The state does not decide
//! what to list or print; `listing` and `collect` ask it.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use time::Date;

const SCHEMA_KEY: &[u8] = b"ossec-cloudtrail-schema";
const SCHEMA: &[u8] = b"1";
const DONE: u8 = b'd';
const RESUME: u8 = b'r';
const FLOOR: u8 = b'f';
/// Digest files verified (`--validate-digests`), by key.
const DIGEST_DONE: u8 = b'g';
/// The last digest of each chain: `{"key", "signature"}`.
const CHAIN: u8 = b'c';
/// CloudTrail's public keys seen, by fingerprint: the key's DER bytes.
const PUBLIC_KEY: u8 = b'k';
/// Per digest partition: when its next digest is due, and whether lateness was reported.
const DIGEST_WATCH: u8 = b'w';
/// The value of a done key printed with `--validate-digests`: the SHA-256 of its content,
/// then this byte once a digest listed it.
const COVERED: u8 = 1;
/// A file beside the database, written once the database holds our schema: a database found
/// empty while it exists has lost its contents.
const IN_USE_MARKER: &str = "in-use";

/// Where the state lives when `--state` is not given: the directory the .deb/.rpm creates, else
/// under OSSEC's own `var/` when this runs on an OSSEC or Wazuh agent, else in the user's XDG
/// state directory.
pub fn default_path() -> Option<PathBuf> {
    let packaged = Path::new("/var/lib/ossec-cloudtrail");
    if is_writable_dir(packaged) {
        return Some(packaged.to_path_buf());
    }
    let ossec_var = Path::new("/var/ossec/var");
    if is_writable_dir(ossec_var) {
        return Some(ossec_var.join("ossec-cloudtrail"));
    }
    let xdg = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(xdg.join("ossec-cloudtrail"))
}

fn is_writable_dir(dir: &Path) -> bool {
    dir.is_dir()
        && tempfile_probe(dir)
            .map(|probe| fs::remove_file(probe).is_ok())
            .unwrap_or(false)
}

fn tempfile_probe(dir: &Path) -> io::Result<PathBuf> {
    let probe = dir.join(format!(".ossec-cloudtrail-probe-{}", std::process::id()));
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    Ok(probe)
}

/// Why the state could not be used. Each message says what to do.
#[derive(Debug)]
pub enum StateError {
    /// Another run holds the lock.
    Busy { path: PathBuf },
    /// The directory or lock file could not be created or opened.
    Io { path: PathBuf, source: io::Error },
    /// The database exists but cannot be read.
    Unreadable { path: PathBuf, reason: String },
    /// Reading or writing a database that opened fine failed.
    Database { path: PathBuf, source: sled::Error },
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::Busy { path } => write!(
                f,
                "another ossec-cloudtrail run is using the state at {}; this run prints nothing \
                 and leaves the work to it (runs must not overlap: raise <frequency> if this repeats)",
                path.display()
            ),
            StateError::Io { path, source } => write!(
                f,
                "cannot use the state directory {}: {source} (pass --state with a directory \
                 this user may write)",
                path.display()
            ),
            StateError::Unreadable { path, reason } => write!(
                f,
                "the state database in {} cannot be read ({reason}); nothing was printed. \
                 To start over, move that directory away: the next run then begins again from \
                 --only-logs-after and may print records already sent",
                path.display()
            ),
            StateError::Database { path, source } => {
                write!(f, "the state database in {} failed: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for StateError {}

impl StateError {
    /// The exit code of a command that stops on this error (see `cli::exit`).
    pub fn exit_code(&self) -> u8 {
        match self {
            StateError::Busy { .. } => crate::cli::exit::BUSY,
            _ => crate::cli::exit::STATE,
        }
    }
}

/// The state of one bucket and prefix.
pub struct State {
    path: PathBuf,
    tree: sled::Tree,
    /// Kept so the database and lock outlive the tree's users.
    db: sled::Db,
    _lock: Option<File>,
    /// Dry runs read the state but never change it.
    read_only: bool,
}

impl State {
    /// Opens (creating with mode 0700 if needed) the state at `path` for `bucket` and
    /// `prefix`. A read-only open of a state that does not exist yet uses an empty
    /// in-memory one and creates nothing on disk.
    pub fn open(
        path: &Path,
        bucket: &str,
        prefix: &str,
        read_only: bool,
    ) -> Result<State, StateError> {
        let db_path = path.join("db");
        if read_only && !db_path.exists() {
            let db = open_sled(sled::Config::new().temporary(true), path)?;
            return State::with_db(path, db, None, bucket, prefix, true, None);
        }
        create_private_dir(path).map_err(|source| StateError::Io {
            path: path.to_owned(),
            source,
        })?;
        let lock = lock(path)?;
        let db = open_sled(sled::Config::new().path(&db_path), path)?;
        let in_use = path.join(IN_USE_MARKER);
        State::with_db(
            path,
            db,
            Some(lock),
            bucket,
            prefix,
            read_only,
            Some(&in_use),
        )
    }

    fn with_db(
        path: &Path,
        db: sled::Db,
        lock: Option<File>,
        bucket: &str,
        prefix: &str,
        read_only: bool,
        in_use_marker: Option<&Path>,
    ) -> Result<State, StateError> {
        let db_err = |source| StateError::Database {
            path: path.to_owned(),
            source,
        };
        let was_in_use = in_use_marker.is_some_and(Path::exists);
        match db.get(SCHEMA_KEY).map_err(db_err)? {
            Some(v) if v.as_ref() != SCHEMA => {
                return Err(StateError::Unreadable {
                    path: path.to_owned(),
                    reason: format!(
                        "it was written by another version (schema {})",
                        String::from_utf8_lossy(&v)
                    ),
                })
            }
            Some(_) => {}
            // sled recovers from damaged files by dropping what it cannot read, which can
            // be everything: starting over then would re-print all history, silently.
            None if was_in_use => {
                return Err(StateError::Unreadable {
                    path: path.to_owned(),
                    reason: "its database came back empty although it was in use: its files \
                             are damaged"
                        .to_owned(),
                })
            }
            None if read_only => {}
            None => {
                db.insert(SCHEMA_KEY, SCHEMA).map_err(db_err)?;
                db.flush().map_err(db_err)?;
            }
        }
        if let Some(marker) = in_use_marker.filter(|_| !was_in_use && !read_only) {
            fs::write(marker, b"ossec-cloudtrail state, schema 1\n").map_err(|source| {
                StateError::Io {
                    path: marker.to_owned(),
                    source,
                }
            })?;
        }
        let tree = db
            .open_tree(format!("scope\0{bucket}\0{prefix}"))
            .map_err(db_err)?;
        Ok(State {
            path: path.to_owned(),
            tree,
            db,
            _lock: lock,
            read_only,
        })
    }

    /// Whether every record of `key` was printed.
    pub fn is_done(&self, key: &str) -> Result<bool, StateError> {
        self.tree
            .contains_key(tagged(DONE, key))
            .map_err(|e| self.db_err(e))
    }

    /// How many records of `key` an earlier run printed before it stopped inside it.
    pub fn resume_from(&self, key: &str) -> Result<u64, StateError> {
        let value = self
            .tree
            .get(tagged(RESUME, key))
            .map_err(|e| self.db_err(e))?;
        Ok(value
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0))
    }

    /// The greatest done key under `prefix`: where the partition's look-back starts from.
    pub fn newest_done(&self, prefix: &str) -> Result<Option<String>, StateError> {
        let last = self
            .tree
            .scan_prefix(tagged(DONE, prefix))
            .keys()
            .next_back()
            .transpose()
            .map_err(|e| self.db_err(e))?;
        Ok(last.map(|k| String::from_utf8_lossy(&k[1..]).into_owned()))
    }

    /// The date a partition was first listed from, so a run cut short by its line budget
    /// does not lose days when the default start date moves on.
    pub fn floor(&self, partition: &str) -> Result<Option<Date>, StateError> {
        let value = self
            .tree
            .get(tagged(FLOOR, partition))
            .map_err(|e| self.db_err(e))?;
        let format = time::macros::format_description!("[year]-[month]-[day]");
        Ok(value.and_then(|v| Date::parse(std::str::from_utf8(&v).ok()?, format).ok()))
    }

    pub fn set_floor(&self, partition: &str, date: Date) -> Result<(), StateError> {
        if self.read_only {
            return Ok(());
        }
        self.tree
            .insert(tagged(FLOOR, partition), date.to_string().as_bytes())
            .map_err(|e| self.db_err(e))?;
        self.flush()
    }

    /// Records that all of `key` was printed, with the SHA-256 of its content when digests
    /// are verified. Call only after stdout was flushed.
    pub fn mark_done(&self, key: &str, sha256: Option<&[u8; 32]>) -> Result<(), StateError> {
        if self.read_only {
            return Ok(());
        }
        // Two plain writes, not a `sled::Batch`: a batch costs about twice the CPU and context
        // switches of an insert (measured: 139 against 68 us per mark with its flush), and it
        // buys nothing here. Most keys never had a resume point, and one left behind by a kill
        // between the two writes is harmless: a done key is never listed again, so its
        // resume point is never read, and pruning removes both.
        self.tree
            .insert(tagged(DONE, key), sha256.map_or(&[][..], |h| &h[..]))
            .map_err(|e| self.db_err(e))?;
        let resume = tagged(RESUME, key);
        if self
            .tree
            .contains_key(&resume)
            .map_err(|e| self.db_err(e))?
        {
            self.tree.remove(resume).map_err(|e| self.db_err(e))?;
        }
        self.flush()
    }

    /// Records that the first `records` records of `key` were printed. Call only after stdout
    /// was flushed.
    pub fn mark_printed_up_to(&self, key: &str, records: u64) -> Result<(), StateError> {
        if self.read_only {
            return Ok(());
        }
        self.tree
            .insert(tagged(RESUME, key), &records.to_be_bytes())
            .map_err(|e| self.db_err(e))?;
        self.flush()
    }

    /// What the state knows of a log file, for digest verification.
    pub fn printed(&self, key: &str) -> Result<Printed, StateError> {
        let value = self
            .tree
            .get(tagged(DONE, key))
            .map_err(|e| self.db_err(e))?;
        Ok(match value {
            None => Printed::No,
            Some(v) if v.len() >= 32 => {
                let mut sha256 = [0; 32];
                sha256.copy_from_slice(&v[..32]);
                Printed::Hashed {
                    sha256,
                    covered: v.get(32) == Some(&COVERED),
                }
            }
            Some(_) => Printed::Unhashed,
        })
    }

    /// The done keys under `prefix` printed with a hash, oldest first, each with whether a
    /// digest listed it yet.
    pub fn hashed(&self, prefix: &str) -> Result<Vec<(String, bool)>, StateError> {
        let mut keys = Vec::new();
        for item in self.tree.scan_prefix(tagged(DONE, prefix)) {
            let (key, value) = item.map_err(|e| self.db_err(e))?;
            if value.len() >= 32 {
                let covered = value.get(32) == Some(&COVERED);
                keys.push((String::from_utf8_lossy(&key[1..]).into_owned(), covered));
            }
        }
        Ok(keys)
    }

    pub fn digest_done(&self, key: &str) -> Result<bool, StateError> {
        self.tree
            .contains_key(tagged(DIGEST_DONE, key))
            .map_err(|e| self.db_err(e))
    }

    /// The last digest of a chain: its key and signature.
    pub fn chain(&self, chain: &str) -> Result<Option<(String, String)>, StateError> {
        let value = self
            .tree
            .get(tagged(CHAIN, chain))
            .map_err(|e| self.db_err(e))?;
        Ok(value.and_then(|v| {
            let text = std::str::from_utf8(&v).ok()?;
            let (key, signature) = text.split_once('\n')?;
            Some((key.to_owned(), signature.to_owned()))
        }))
    }

    /// Records a digest as verified (its findings were printed and flushed), as the new end
    /// of its chain unless it is a backfill, and the printed keys it listed as covered.
    pub fn mark_digest_done(
        &self,
        key: &str,
        chain: Option<(&str, &str)>,
        covered: &[String],
    ) -> Result<(), StateError> {
        if self.read_only {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        batch.insert(tagged(DIGEST_DONE, key), &[][..]);
        if let Some((chain, signature)) = chain {
            batch.insert(
                tagged(CHAIN, chain),
                format!("{key}\n{signature}").as_bytes(),
            );
        }
        for log in covered {
            if let Printed::Hashed {
                sha256,
                covered: false,
            } = self.printed(log)?
            {
                let mut value = sha256.to_vec();
                value.push(COVERED);
                batch.insert(tagged(DONE, log), value);
            }
        }
        self.tree.apply_batch(batch).map_err(|e| self.db_err(e))?;
        self.flush()
    }

    pub fn public_key(&self, fingerprint: &str) -> Result<Option<Vec<u8>>, StateError> {
        let value = self
            .tree
            .get(tagged(PUBLIC_KEY, fingerprint))
            .map_err(|e| self.db_err(e))?;
        Ok(value.map(|v| v.to_vec()))
    }

    pub fn set_public_key(&self, fingerprint: &str, der: &[u8]) -> Result<(), StateError> {
        if self.read_only {
            return Ok(());
        }
        self.tree
            .insert(tagged(PUBLIC_KEY, fingerprint), der)
            .map_err(|e| self.db_err(e))?;
        self.flush()
    }

    /// What digest verification keeps per digest partition (a small JSON document).
    pub fn digest_watch(&self, digest_prefix: &str) -> Result<Option<String>, StateError> {
        let value = self
            .tree
            .get(tagged(DIGEST_WATCH, digest_prefix))
            .map_err(|e| self.db_err(e))?;
        Ok(value.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    pub fn set_digest_watch(&self, digest_prefix: &str, value: &str) -> Result<(), StateError> {
        if self.read_only {
            return Ok(());
        }
        self.tree
            .insert(tagged(DIGEST_WATCH, digest_prefix), value.as_bytes())
            .map_err(|e| self.db_err(e))?;
        self.flush()
    }

    /// Forgets the verified digests under `digest_prefix` that sort before `before`.
    pub fn prune_digests(&self, digest_prefix: &str, before: &str) -> Result<usize, StateError> {
        self.remove_ranges(&[DIGEST_DONE], |tag| {
            tagged(tag, digest_prefix)..tagged(tag, before)
        })
    }

    /// Forgets the keys under `prefix` that sort before `before`: they are older than any
    /// listing will look at again. Returns how many were removed.
    pub fn prune(&self, prefix: &str, before: &str) -> Result<usize, StateError> {
        self.remove_ranges(&[DONE, RESUME], |tag| {
            tagged(tag, prefix)..tagged(tag, before)
        })
    }

    /// Everything remembered for this bucket and prefix, in key order within each kind.
    pub fn entries(&self) -> Result<Vec<Entry>, StateError> {
        let mut entries = Vec::new();
        for item in self.tree.iter() {
            let (key, value) = item.map_err(|e| self.db_err(e))?;
            let Some((&tag, text)) = key.split_first() else {
                continue;
            };
            let text = String::from_utf8_lossy(text).into_owned();
            entries.push(match tag {
                DONE => Entry::Done(text),
                // A run killed inside `mark_done` can leave the resume point of a done key.
                RESUME if self.is_done(&text)? => continue,
                RESUME => Entry::Unfinished {
                    records: <[u8; 8]>::try_from(value.as_ref())
                        .map(u64::from_be_bytes)
                        .unwrap_or(0),
                    key: text,
                },
                FLOOR => Entry::Floor {
                    date: std::str::from_utf8(&value).ok().and_then(|v| {
                        Date::parse(v, time::macros::format_description!("[year]-[month]-[day]"))
                            .ok()
                    }),
                    partition: text,
                },
                _ => continue,
            });
        }
        Ok(entries)
    }

    /// Forgets the done and unfinished keys under `within` that sort at or after `from`, so
    /// that the next run prints them again. Returns how many were forgotten.
    pub fn forget(&self, within: &str, from: &str) -> Result<usize, StateError> {
        // Keys are a tag and UTF-8 text, which never holds 0xFF: every key under `within`
        // sorts before `within` + 0xFF.
        self.remove_ranges(&[DONE, RESUME], |tag| {
            let mut end = tagged(tag, within);
            end.push(0xFF);
            tagged(tag, from)..end
        })
    }

    /// Removes the keys in `range(tag)` for each of `tags`, in one batch, then flushes.
    /// Returns how many were removed.
    fn remove_ranges(
        &self,
        tags: &[u8],
        range: impl Fn(u8) -> std::ops::Range<Vec<u8>>,
    ) -> Result<usize, StateError> {
        if self.read_only {
            return Ok(0);
        }
        let mut batch = sled::Batch::default();
        let mut removed = 0;
        for &tag in tags {
            for key in self.tree.range(range(tag)).keys() {
                batch.remove(key.map_err(|e| self.db_err(e))?);
                removed += 1;
            }
        }
        if removed > 0 {
            self.tree.apply_batch(batch).map_err(|e| self.db_err(e))?;
            self.flush()?;
        }
        Ok(removed)
    }

    /// The whole database's size on disk (every bucket and prefix it holds).
    pub fn size_on_disk(&self) -> Result<u64, StateError> {
        self.db.size_on_disk().map_err(|e| self.db_err(e))
    }

    /// Done and unfinished keys remembered for this bucket and prefix.
    #[cfg(test)]
    pub fn remembered(&self) -> usize {
        self.tree
            .iter()
            .keys()
            .filter(|k| matches!(k, Ok(k) if k.first() != Some(&FLOOR)))
            .count()
    }

    fn flush(&self) -> Result<(), StateError> {
        self.tree.flush().map(drop).map_err(|e| self.db_err(e))
    }

    fn db_err(&self, source: sled::Error) -> StateError {
        StateError::Database {
            path: self.path.clone(),
            source,
        }
    }
}

/// One thing the state remembers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// Every record of this key was printed.
    Done(String),
    /// The first `records` records of this key were printed.
    Unfinished { key: String, records: u64 },
    /// The day a partition (named by its prefix) was first listed from.
    Floor {
        partition: String,
        date: Option<Date>,
    },
}

/// What the state knows of a log file, for digest verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Printed {
    /// Not printed (yet), or forgotten.
    No,
    /// Printed before digests were verified: no hash to compare.
    Unhashed,
    /// Printed, with the SHA-256 of its uncompressed content.
    Hashed { sha256: [u8; 32], covered: bool },
}

fn tagged(tag: u8, text: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(text.len() + 1);
    key.push(tag);
    key.extend_from_slice(text.as_bytes());
    key
}

fn create_private_dir(path: &Path) -> io::Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
    }
    let mut builder = fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    match builder.create(path) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        other => other,
    }
}

fn lock(path: &Path) -> Result<File, StateError> {
    let lock_path = path.join("lock");
    let io_err = |source| StateError::Io {
        path: lock_path.clone(),
        source,
    };
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(io_err)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(StateError::Busy {
            path: path.to_owned(),
        }),
        Err(fs::TryLockError::Error(e)) => Err(io_err(e)),
    }
}

fn try_open_sled(config: &sled::Config) -> std::thread::Result<sled::Result<sled::Db>> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| config.open()))
}

/// Opens sled, turning its errors (and the panics it raises on some damaged files) into a
/// message that names the directory and the way out.
fn open_sled(config: sled::Config, path: &Path) -> Result<sled::Db, StateError> {
    // We hold our own lock by now, so a sled lock conflict is this process's previous handle,
    // which sled's flusher thread releases a moment after it is dropped.
    let mut opened = try_open_sled(&config);
    for _ in 0..50 {
        match &opened {
            // sled reports it as an `Other` I/O error with this text.
            Ok(Err(sled::Error::Io(e))) if e.to_string().contains("could not acquire lock") => {
                std::thread::sleep(std::time::Duration::from_millis(20));
                opened = try_open_sled(&config);
            }
            _ => break,
        }
    }
    match opened {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(e)) => Err(StateError::Unreadable {
            path: path.to_owned(),
            reason: e.to_string(),
        }),
        Err(panic) => Err(StateError::Unreadable {
            path: path.to_owned(),
            reason: panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "sled failed while opening it".to_owned()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    const P: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/";

    fn key(day: &str, stamp: &str) -> String {
        format!("{P}{day}/111122223333_CloudTrail_us-east-1_{stamp}_x.json.gz")
    }

    #[test]
    fn remembers_done_keys_resume_points_and_floors_across_opens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let (a, b) = (
            key("2026/11/22", "20261122T2355Z"),
            key("2026/11/23", "20261123T0005Z"),
        );
        {
            let state = State::open(&path, "bucket", "", false).unwrap();
            assert!(!state.is_done(&a).unwrap());
            state.mark_printed_up_to(&a, 7).unwrap();
            state.set_floor(P, date!(2026 - 11 - 22)).unwrap();
            state.mark_done(&b, None).unwrap();
        }
        let state = State::open(&path, "bucket", "", false).unwrap();
        assert_eq!(state.resume_from(&a).unwrap(), 7);
        assert!(state.is_done(&b).unwrap());
        assert_eq!(state.newest_done(P).unwrap(), Some(b.clone()));
        assert_eq!(state.floor(P).unwrap(), Some(date!(2026 - 11 - 22)));
        state.mark_done(&a, None).unwrap();
        assert_eq!(
            state.resume_from(&a).unwrap(),
            0,
            "done clears the resume point"
        );

        let other_scope = State::open(&path, "bucket", "other/", false);
        assert!(
            matches!(other_scope, Err(StateError::Busy { .. })),
            "a second open while the first is alive must be refused"
        );
        drop(state);
        let other_scope = State::open(&path, "bucket", "other/", false).unwrap();
        assert!(!other_scope.is_done(&b).unwrap(), "scopes are separate");
    }

    #[test]
    fn pruning_forgets_only_older_keys_of_the_partition() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(dir.path(), "bucket", "", false).unwrap();
        let old = key("2026/11/20", "20261120T1000Z");
        let keep = key("2026/11/22", "20261122T1000Z");
        let elsewhere = "AWSLogs/111122223333/CloudTrail/eu-west-1/2026/11/01/x.json.gz";
        for k in [&old, &keep, &elsewhere.to_owned()] {
            state.mark_done(k, None).unwrap();
        }
        state
            .mark_printed_up_to(&key("2026/11/19", "20261119T1000Z"), 3)
            .unwrap();
        let removed = state.prune(P, &format!("{P}2026/11/21/")).unwrap();
        assert_eq!(removed, 2);
        assert!(!state.is_done(&old).unwrap());
        assert!(state.is_done(&keep).unwrap());
        assert!(state.is_done(elsewhere).unwrap());
        assert_eq!(state.remembered(), 2);
    }

    #[test]
    fn read_only_changes_nothing_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fresh");
        let state = State::open(&path, "bucket", "", true).unwrap();
        state.mark_done("k", None).unwrap();
        state.set_floor(P, date!(2026 - 11 - 22)).unwrap();
        assert!(!state.is_done("k").unwrap());
        drop(state);
        assert!(
            !path.exists(),
            "a dry run on a fresh state must not create it"
        );

        let rw = State::open(&path, "bucket", "", false).unwrap();
        rw.mark_done("k", None).unwrap();
        drop(rw);
        let ro = State::open(&path, "bucket", "", true).unwrap();
        ro.mark_done("k2", None).unwrap();
        ro.mark_printed_up_to("k3", 5).unwrap();
        assert!(ro.is_done("k").unwrap());
        assert!(!ro.is_done("k2").unwrap());
        assert_eq!(ro.resume_from("k3").unwrap(), 0);
    }

    #[test]
    fn forget_removes_keys_from_a_point_on_within_one_partition_only() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(&dir.path().join("state"), "bucket", "", false).unwrap();
        let (old, new) = (
            key("2026/11/20", "20261120T0900Z"),
            key("2026/11/22", "20261122T0900Z"),
        );
        let other = "AWSLogs/111122223333/CloudTrail/us-east-2/2026/11/22/k.json.gz";
        for k in [&old, &new, other] {
            state.mark_done(k, None).unwrap();
        }
        state
            .mark_printed_up_to(&key("2026/11/23", "x"), 4)
            .unwrap();
        state.set_floor(P, date!(2026 - 11 - 19)).unwrap();

        let forgotten = state.forget(P, &format!("{P}2026/11/21/")).unwrap();
        assert_eq!(forgotten, 2, "one done key, one resume point");
        assert!(state.is_done(&old).unwrap());
        assert!(!state.is_done(&new).unwrap());
        assert!(
            state.is_done(other).unwrap(),
            "another partition is untouched"
        );
        let entries = state.entries().unwrap();
        assert!(entries.contains(&Entry::Done(old.clone())));
        assert!(entries.contains(&Entry::Floor {
            partition: P.to_owned(),
            date: Some(date!(2026 - 11 - 19)),
        }));
        assert_eq!(entries.len(), 3, "{entries:?}");
    }

    #[cfg(unix)]
    #[test]
    fn the_state_directory_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/state");
        State::open(&path, "bucket", "", false).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    /// Opens a state that held a key after its database files were overwritten with `junk`.
    fn open_after_damage(junk: &[u8]) -> StateError {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        State::open(&path, "bucket", "", false)
            .unwrap()
            .mark_done("k", None)
            .unwrap();
        for entry in fs::read_dir(path.join("db")).unwrap() {
            let entry = entry.unwrap().path();
            if entry.is_file() {
                fs::write(&entry, junk).unwrap();
            }
        }
        State::open(&path, "bucket", "", false)
            .err()
            .expect("a damaged state must not open")
    }

    #[test]
    fn a_damaged_database_is_a_clear_error() {
        // Text sled cannot parse, and zeros that sled takes for an empty log: the second
        // would silently start over without the in-use marker.
        for junk in [&b"garbage, not a sled file"[..], b"\x00garbage"] {
            let err = open_after_damage(junk);
            assert!(
                matches!(err, StateError::Unreadable { .. }),
                "unexpected error: {err}"
            );
            assert!(err.to_string().contains("move that directory away"));
        }
    }
}
