//! The CloudTrail key layout in S3: which prefixes hold which account and region, which keys
//! are log files, and which date folder a key belongs to.
//!
//! CloudTrail writes `[PREFIX/]AWSLogs/[o-ORGID/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/FILE`,
//! where FILE is `ACCOUNT_CloudTrail_REGION_YYYYMMDDTHHmmZ_RANDOM.json.gz`. This module only
//! reasons about key strings: it never talks to S3 (that is `listing`) and never decides what
//! was already printed (that is `state`).

use time::{Date, Month};

/// One account/region folder of a trail: the unit that is listed, ordered and remembered.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Partition {
    /// Full S3 prefix, ending in `/CloudTrail/REGION/`.
    pub prefix: String,
    pub org: Option<String>,
    pub account: String,
    pub region: String,
}

impl Partition {
    pub fn new(account_prefix: &str, org: Option<&str>, account: &str, region: &str) -> Self {
        Partition {
            prefix: format!("{account_prefix}CloudTrail/{region}/"),
            org: org.map(str::to_owned),
            account: account.to_owned(),
            region: region.to_owned(),
        }
    }

    /// The key prefix of one day's folder, e.g. `.../us-east-1/2026/11/23/`.
    pub fn day_folder(&self, date: Date) -> String {
        format!(
            "{}{:04}/{:02}/{:02}/",
            self.prefix,
            date.year(),
            u8::from(date.month()),
            date.day()
        )
    }

    /// Where CloudTrail puts this partition's digest files (with log file validation on):
    /// `.../ACCOUNT/CloudTrail-Digest/REGION/`, beside the logs.
    pub fn digest_prefix(&self) -> String {
        let account_prefix = self
            .prefix
            .strip_suffix(&format!("CloudTrail/{}/", self.region))
            .unwrap_or(&self.prefix);
        format!("{account_prefix}CloudTrail-Digest/{}/", self.region)
    }

    /// The digest prefix's folder for one day.
    pub fn digest_day_folder(&self, date: Date) -> String {
        format!(
            "{}{:04}/{:02}/{:02}/",
            self.digest_prefix(),
            date.year(),
            u8::from(date.month()),
            date.day()
        )
    }

    /// Recognises a digest file of this partition:
    /// `.../YYYY/MM/DD/ACCOUNT_CloudTrail-Digest_REGION_TRAIL_HOMEREGION_YYYYMMDDTHHMMSSZ.json.gz`
    /// (a `_backfill` before `.json.gz` for the digests CloudTrail delivers late).
    pub fn digest_file<'k>(&self, key: &'k str) -> Option<DigestFile<'k>> {
        let rest = key.strip_prefix(&self.digest_prefix())?;
        let (_, file) = parse_day_path(rest)?;
        let name = file.strip_suffix(".json.gz")?;
        let (name, backfill) = match name.strip_suffix("_backfill") {
            Some(name) => (name, true),
            None => (name, false),
        };
        let (chain, stamp) = name.rsplit_once('_')?;
        let trail = chain
            .strip_prefix(&self.account)?
            .strip_prefix("_CloudTrail-Digest_")?
            .strip_prefix(&self.region)?
            .strip_prefix('_')?;
        let (_, home_region) = trail.rsplit_once('_')?;
        if stamp.len() != 16 || !is_region(home_region) || file.contains('/') {
            return None;
        }
        Some(DigestFile {
            chain,
            home_region,
            stamp,
            backfill,
        })
    }

    /// Recognises a CloudTrail log file of this partition and tells its date and sort stamp.
    /// Digests, Insights, folder placeholders and stray files return `None`.
    pub fn log_file<'k>(&self, key: &'k str) -> Option<LogFile<'k>> {
        let rest = key.strip_prefix(&self.prefix)?;
        let (date, file) = parse_day_path(rest)?;
        let stamp = file
            .strip_prefix(&self.account)?
            .strip_prefix("_CloudTrail_")?
            .strip_prefix(&self.region)?
            .strip_prefix('_')?;
        if !stamp.ends_with(".json.gz") || stamp.contains('/') {
            return None;
        }
        Some(LogFile { date, stamp })
    }
}

/// What a log file's key says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogFile<'k> {
    /// The day folder the file sits in.
    pub date: Date,
    /// `YYYYMMDDTHHmmZ_RANDOM.json.gz`: sorts files of different partitions by delivery time.
    pub stamp: &'k str,
}

/// What a digest file's key says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestFile<'k> {
    /// `ACCOUNT_CloudTrail-Digest_REGION_TRAIL_HOMEREGION`: the file name without its time,
    /// the same for every digest of one trail's chain in this partition.
    pub chain: &'k str,
    /// The trail's home region, whose CloudTrail keys sign the digests.
    pub home_region: &'k str,
    /// `YYYYMMDDTHHMMSSZ`, the end of the hour it covers.
    pub stamp: &'k str,
    /// Delivered late, outside the chain.
    pub backfill: bool,
}

/// When CloudTrail delivered a log file, from its stamp (`YYYYMMDDTHHmmZ_RANDOM.json.gz`):
/// the end of the five minutes its records cover, to the minute.
pub fn delivery_time(stamp: &str) -> Option<time::OffsetDateTime> {
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = stamp.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if stamp.get(8..9)? != "T" || stamp.get(13..14)? != "Z" {
        return None;
    }
    let month = Month::try_from(u8::try_from(digits(4..6)?).ok()?).ok()?;
    let date = Date::from_calendar_date(digits(0..4)? as i32, month, digits(6..8)? as u8).ok()?;
    let time = time::Time::from_hms(digits(9..11)? as u8, digits(11..13)? as u8, 0).ok()?;
    Some(date.with_time(time).assume_utc())
}

/// `--prefix` as S3 wants it: no leading slash, one trailing slash, empty when unset.
pub fn normalize_prefix(prefix: &str) -> String {
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("{trimmed}/")
    }
}

/// The `AWSLogs/` folder under the user's prefix: the root of account discovery.
pub fn awslogs_prefix(normalized_prefix: &str) -> String {
    format!("{normalized_prefix}AWSLogs/")
}

/// The partition that a key (or a partition's own prefix) under the trail's normalized
/// `prefix` belongs to.
pub fn partition_of(normalized_prefix: &str, key: &str) -> Option<Partition> {
    let root = awslogs_prefix(normalized_prefix);
    let mut parts = key.strip_prefix(&root)?.split('/');
    let first = parts.next()?;
    let (org, account) = if is_org_id(first) {
        (Some(first), parts.next()?)
    } else {
        (None, first)
    };
    let region = match (parts.next(), parts.next(), parts.next()) {
        (Some("CloudTrail"), Some(region), Some(_)) if is_region(region) => region,
        _ => return None,
    };
    if !is_account_id(account) {
        return None;
    }
    let org_folder = org.map(|o| format!("{o}/")).unwrap_or_default();
    let account_prefix = format!("{root}{org_folder}{account}/");
    Some(Partition::new(&account_prefix, org, account, region))
}

/// The last path segment of a common prefix returned by a delimiter listing
/// (`AWSLogs/123456789012/` gives `123456789012`).
pub fn last_segment(common_prefix: &str) -> &str {
    common_prefix
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("")
}

/// An AWS account id: exactly twelve digits.
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// An AWS Organizations id: `o-` and 10 to 32 lowercase letters or digits.
pub fn is_org_id(s: &str) -> bool {
    s.strip_prefix("o-").is_some_and(|rest| {
        (10..=32).contains(&rest.len())
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

/// A region name as CloudTrail writes it (`us-east-1`, `us-gov-west-1`, `cn-north-1`).
pub fn is_region(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.contains('-')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Splits `YYYY/MM/DD/FILE` into its date and file name.
fn parse_day_path(rest: &str) -> Option<(Date, &str)> {
    let bytes = rest.as_bytes();
    if bytes.len() < 11 || bytes[4] != b'/' || bytes[7] != b'/' || bytes[10] != b'/' {
        return None;
    }
    let year: i32 = digits(&rest[0..4])?;
    let month: u8 = digits(&rest[5..7])?;
    let day: u8 = digits(&rest[8..10])?;
    let date = Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()?;
    let file = &rest[11..];
    (!file.is_empty()).then_some((date, file))
}

fn digits<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn partition() -> Partition {
        Partition::new(
            "logs/AWSLogs/111122223333/",
            None,
            "111122223333",
            "us-east-1",
        )
    }

    #[test]
    fn recognises_digest_files_and_their_chain() {
        let p = partition();
        assert_eq!(
            p.digest_prefix(),
            "logs/AWSLogs/111122223333/CloudTrail-Digest/us-east-1/"
        );
        let base = "logs/AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/11/23/";
        let chain = "111122223333_CloudTrail-Digest_us-east-1_my_trail_eu-west-1";
        // (file name, what it says: home region, stamp, backfill)
        type Says = Option<(&'static str, &'static str, bool)>;
        let cases: &[(&str, Says)] = &[
            (
                "111122223333_CloudTrail-Digest_us-east-1_my_trail_eu-west-1_20261123T095959Z.json.gz",
                Some(("eu-west-1", "20261123T095959Z", false)),
            ),
            (
                "111122223333_CloudTrail-Digest_us-east-1_my_trail_eu-west-1_20261123T095959Z_backfill.json.gz",
                Some(("eu-west-1", "20261123T095959Z", true)),
            ),
            ("111122223333_CloudTrail_us-east-1_20261123T0930Z_x.json.gz", None),
            ("999999999999_CloudTrail-Digest_us-east-1_t_eu-west-1_20261123T095959Z.json.gz", None),
            ("111122223333_CloudTrail-Digest_us-east-1_t_eu-west-1_2026.json.gz", None),
        ];
        for (name, expected) in cases {
            let key = format!("{base}{name}");
            let found = p.digest_file(&key);
            assert_eq!(
                found.map(|d| (d.home_region, d.stamp, d.backfill)),
                *expected,
                "{name}"
            );
            if let Some(d) = found {
                assert_eq!(d.chain, chain);
            }
        }
        assert_eq!(
            p.digest_file("logs/AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/23/x.json.gz"),
            None
        );
    }

    #[test]
    fn recognises_log_files_and_rejects_the_rest() {
        let p = partition();
        let base = "logs/AWSLogs/111122223333/CloudTrail/us-east-1/";
        let cases: &[(&str, Option<(Date, &str)>)] = &[
            (
                "2026/11/23/111122223333_CloudTrail_us-east-1_20261123T0930Z_AbC123.json.gz",
                Some((date!(2026 - 11 - 23), "20261123T0930Z_AbC123.json.gz")),
            ),
            ("2026/11/23/", None),
            ("2026/11/23", None),
            ("2026/11/23/notes.txt", None),
            (
                "2026/11/23/111122223333_CloudTrail-Digest_us-east-1_20261123T0930Z.json.gz",
                None,
            ),
            (
                "2026/11/23/999999999999_CloudTrail_us-east-1_20261123T0930Z_x.json.gz",
                None,
            ),
            (
                "2026/11/23/111122223333_CloudTrail_eu-west-1_20261123T0930Z_x.json.gz",
                None,
            ),
            (
                "2026/02/30/111122223333_CloudTrail_us-east-1_20260230T0930Z_x.json.gz",
                None,
            ),
            (
                "2026/11/23/111122223333_CloudTrail_us-east-1_20261123T0930Z_x.json",
                None,
            ),
            (
                "2026/11/23/sub/111122223333_CloudTrail_us-east-1_20261123T0930Z_x.json.gz",
                None,
            ),
        ];
        for (rest, want) in cases {
            let key = format!("{base}{rest}");
            let got = p.log_file(&key).map(|f| (f.date, f.stamp));
            assert_eq!(got, *want, "key {key}");
        }
        assert_eq!(p.log_file("other/AWSLogs/x"), None);
    }

    #[test]
    fn finds_the_partition_of_a_key() {
        let key =
            "logs/AWSLogs/o-a1b2c3d4e5/111122223333/CloudTrail/eu-west-1/2026/11/23/x.json.gz";
        let p = partition_of("logs/", key).unwrap();
        assert_eq!(
            p.prefix,
            "logs/AWSLogs/o-a1b2c3d4e5/111122223333/CloudTrail/eu-west-1/"
        );
        assert_eq!(
            (p.org.as_deref(), p.account.as_str(), p.region.as_str()),
            (Some("o-a1b2c3d4e5"), "111122223333", "eu-west-1")
        );
        assert_eq!(partition_of("logs/", &p.prefix), Some(p.clone()));
        assert_eq!(partition_of("", &p.prefix), None, "another prefix");
        assert_eq!(
            partition_of("", "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/x"),
            None
        );
        assert_eq!(
            partition_of("", "AWSLogs/111122223333/CloudTrail/us-east-1"),
            None
        );
        assert_eq!(
            partition_of("", "AWSLogs/111122223333/CloudTrail/us-east-1/").map(|p| p.prefix),
            Some("AWSLogs/111122223333/CloudTrail/us-east-1/".to_owned())
        );
    }

    #[test]
    fn day_folder_is_zero_padded() {
        assert_eq!(
            partition().day_folder(date!(2026 - 01 - 05)),
            "logs/AWSLogs/111122223333/CloudTrail/us-east-1/2026/01/05/"
        );
    }

    #[test]
    fn prefixes_are_normalized() {
        for (input, want) in [
            ("", ""),
            ("/", ""),
            ("logs", "logs/"),
            ("/logs/", "logs/"),
            ("a/b//", "a/b/"),
        ] {
            assert_eq!(normalize_prefix(input), want, "prefix {input:?}");
        }
        assert_eq!(awslogs_prefix("logs/"), "logs/AWSLogs/");
    }

    #[test]
    fn classifies_folder_names() {
        assert!(is_account_id("111122223333"));
        assert!(!is_account_id("11112222333"));
        assert!(!is_account_id("11112222333x"));
        assert!(is_org_id("o-a1b2c3d4e5"));
        assert!(!is_org_id("o-short"));
        assert!(!is_org_id("o-A1B2C3D4E5"));
        assert!(is_region("us-east-1"));
        assert!(is_region("us-gov-west-1"));
        assert!(!is_region("CloudTrail"));
        assert!(!is_region(""));
        assert_eq!(last_segment("AWSLogs/o-a1b2c3d4e5/"), "o-a1b2c3d4e5");
        assert_eq!(last_segment("x/AWSLogs/111122223333/"), "111122223333");
    }

    #[test]
    fn delivery_time_is_read_off_the_stamp() {
        let t = delivery_time("20261120T0905Z_a1b2c3d4e5f6g7h8.json.gz").unwrap();
        assert_eq!(t.to_string(), "2026-11-20 9:05:00.0 +00:00:00");
        for bad in [
            "2026112T0905Z_x",
            "20261320T0905Z_x",
            "20261120X0905Z_x",
            "",
            "20261120T09",
        ] {
            assert_eq!(delivery_time(bad), None, "{bad}");
        }
    }
}
