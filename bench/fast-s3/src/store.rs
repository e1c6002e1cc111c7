//! What the server serves: every object of ROOT/BUCKET/KEY, read once at start into a sorted
//! map per bucket. Listings walk that map from where they start (prefix, start-after or
//! continuation token) and stop at the end of the prefix or at max-keys, skipping over a whole
//! common prefix in one step: O(keys listed), whatever the bucket's size. GETs are answered
//! from memory. Every other operation goes to s3s-fs on the same folder.
//!
//! Why not s3s-fs alone (0.14.1): its ListObjectsV2 walks the bucket's whole folder tree on
//! every call, with or without a delimiter (`list_objects_recursive`,
//! `list_objects_with_delimiter`), stats every file, then sorts and filters: O(bucket) per
//! listing, the same trap as moto. Its GetObject goes through tokio::fs (each step a trip to
//! the blocking pool), looks for metadata files and computes the object's MD5 by reading it
//! once more. `--fs-list` and `--fs-get` keep its own ListObjectsV2 and GetObject, to compare.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use bytes::Bytes;
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result, S3};

pub struct Object {
    pub data: Bytes,
    pub modified: Timestamp,
    pub etag: String,
}

pub struct Store {
    buckets: HashMap<String, BTreeMap<String, Object>>,
    fs: s3s_fs::FileSystem,
    fs_list: bool,
    fs_get: bool,
}

/// Sorts after every key that starts with a given string (no key holds this character).
const AFTER_ALL: char = '\u{10FFFF}';

impl Store {
    /// Reads every file under `root`: one bucket per top folder, one object per file below it.
    pub fn load(root: &Path, fs_list: bool, fs_get: bool) -> std::io::Result<Store> {
        let mut buckets = HashMap::new();
        for entry in std::fs::read_dir(root)? {
            let entry = entry?;
            if !entry.file_type()?.is_dir() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let mut objects = BTreeMap::new();
            load_dir(&entry.path(), &entry.path(), &mut objects)?;
            buckets.insert(name, objects);
        }
        let fs =
            s3s_fs::FileSystem::new(root).map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        Ok(Store {
            buckets,
            fs,
            fs_list,
            fs_get,
        })
    }

    pub fn summary(&self) -> String {
        let mut names: Vec<_> = self.buckets.keys().collect();
        names.sort();
        names
            .iter()
            .map(|b| {
                let objects = &self.buckets[*b];
                let bytes: usize = objects.values().map(|o| o.data.len()).sum();
                format!("{b}: {} objects, {bytes} bytes", objects.len())
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn bucket(&self, name: &str) -> S3Result<&BTreeMap<String, Object>> {
        self.buckets
            .get(name)
            .ok_or_else(|| s3_error!(NoSuchBucket))
    }
}

fn load_dir(base: &Path, dir: &Path, out: &mut BTreeMap<String, Object>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path: PathBuf = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            load_dir(base, &path, out)?;
        } else if kind.is_file() {
            let key = path
                .strip_prefix(base)
                .expect("under its base")
                .to_string_lossy()
                .replace(std::path::MAIN_SEPARATOR, "/");
            let data = Bytes::from(std::fs::read(&path)?);
            let modified = entry
                .metadata()?
                .modified()
                .unwrap_or(SystemTime::UNIX_EPOCH);
            // A cheap stand-in for an MD5: unique enough for a bench, costs nothing per GET.
            let etag = format!("{:016x}{:016x}", data.len(), fnv(&data));
            out.insert(
                key,
                Object {
                    data,
                    modified: Timestamp::from(modified),
                    etag,
                },
            );
        }
    }
    Ok(())
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

/// One page of a ListObjectsV2: the keys and common prefixes after `after`, in order.
pub struct Listing {
    pub objects: Vec<(String, usize, Timestamp, String)>,
    pub prefixes: Vec<String>,
    pub next: Option<String>,
}

/// Lists `prefix` from after `after` (exclusive): with a delimiter, keys that hold it past the
/// prefix are rolled into one common prefix each, which the walk then jumps over. A token that
/// is a common prefix resumes after everything below it.
pub fn list(
    objects: &BTreeMap<String, Object>,
    prefix: &str,
    delimiter: Option<&str>,
    after: Option<&str>,
    max_keys: usize,
) -> Listing {
    let mut out = Listing {
        objects: Vec::new(),
        prefixes: Vec::new(),
        next: None,
    };
    let mut cursor: Bound<String> = match after {
        Some(a) if a >= prefix => match delimiter {
            Some(d)
                if a.ends_with(d)
                    && a.len() > prefix.len()
                    && a[prefix.len()..a.len() - d.len()].find(d).is_none() =>
            {
                Bound::Excluded(format!("{a}{AFTER_ALL}"))
            }
            _ => Bound::Excluded(a.to_owned()),
        },
        _ => Bound::Included(prefix.to_owned()),
    };
    let mut last: Option<String> = None;
    while let Some((key, object)) = objects
        .range::<String, _>((cursor.as_ref(), Bound::Unbounded))
        .next()
        .filter(|(key, _)| key.starts_with(prefix))
    {
        if out.objects.len() + out.prefixes.len() == max_keys {
            out.next = last;
            return out;
        }
        let rest = &key[prefix.len()..];
        match delimiter.and_then(|d| rest.find(d).map(|i| (i, d))) {
            Some((i, d)) => {
                let common = key[..prefix.len() + i + d.len()].to_owned();
                cursor = Bound::Excluded(format!("{common}{AFTER_ALL}"));
                last = Some(common.clone());
                out.prefixes.push(common);
            }
            None => {
                cursor = Bound::Excluded(key.clone());
                last = Some(key.clone());
                out.objects.push((
                    key.clone(),
                    object.data.len(),
                    object.modified.clone(),
                    object.etag.clone(),
                ));
            }
        }
    }
    out
}

#[async_trait::async_trait]
impl S3 for Store {
    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        if self.fs_list {
            return self.fs.list_objects_v2(req).await;
        }
        let input = req.input;
        let objects = self.bucket(&input.bucket)?;
        let prefix = input.prefix.as_deref().unwrap_or("");
        let max_keys = input.max_keys.unwrap_or(1000).clamp(0, 1000) as usize;
        // The token is the last key or common prefix of the page before.
        let after = match (
            input.continuation_token.as_deref(),
            input.start_after.as_deref(),
        ) {
            (Some(t), Some(s)) => Some(t.max(s)),
            (t, s) => t.or(s),
        };
        let page = list(objects, prefix, input.delimiter.as_deref(), after, max_keys);
        let count = page.objects.len() + page.prefixes.len();
        let contents: Vec<s3s::dto::Object> = page
            .objects
            .into_iter()
            .map(|(key, size, modified, etag)| s3s::dto::Object {
                key: Some(key),
                size: Some(size as i64),
                last_modified: Some(modified),
                e_tag: Some(ETag::Strong(etag)),
                storage_class: Some(ObjectStorageClass::from_static(
                    ObjectStorageClass::STANDARD,
                )),
                ..Default::default()
            })
            .collect();
        let common: Vec<CommonPrefix> = page
            .prefixes
            .into_iter()
            .map(|p| CommonPrefix { prefix: Some(p) })
            .collect();
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: input.prefix,
            delimiter: input.delimiter,
            max_keys: Some(max_keys as i32),
            key_count: Some(count as i32),
            is_truncated: Some(page.next.is_some()),
            continuation_token: input.continuation_token,
            next_continuation_token: page.next,
            start_after: input.start_after,
            contents: (!contents.is_empty()).then_some(contents),
            common_prefixes: (!common.is_empty()).then_some(common),
            ..Default::default()
        }))
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        if self.fs_get {
            return self.fs.get_object(req).await;
        }
        let input = req.input;
        let object = self
            .bucket(&input.bucket)?
            .get(&input.key)
            .ok_or_else(|| s3_error!(NoSuchKey))?;
        let full = object.data.len() as u64;
        let (body, content_range) = match &input.range {
            None => (object.data.clone(), None),
            Some(range) => {
                let r = range.check(full).map_err(|_| s3_error!(InvalidRange))?;
                (
                    object.data.slice(r.start as usize..r.end as usize),
                    Some(format!("bytes {}-{}/{full}", r.start, r.end - 1)),
                )
            }
        };
        Ok(S3Response::new(GetObjectOutput {
            content_length: Some(body.len() as i64),
            body: Some(StreamingBlob::from(s3s::Body::from(body))),
            content_range,
            last_modified: Some(object.modified.clone()),
            e_tag: Some(ETag::Strong(object.etag.clone())),
            accept_ranges: Some("bytes".to_owned()),
            ..Default::default()
        }))
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let input = req.input;
        let object = self
            .bucket(&input.bucket)?
            .get(&input.key)
            .ok_or_else(|| s3_error!(NoSuchKey))?;
        Ok(S3Response::new(HeadObjectOutput {
            content_length: Some(object.data.len() as i64),
            last_modified: Some(object.modified.clone()),
            e_tag: Some(ETag::Strong(object.etag.clone())),
            accept_ranges: Some("bytes".to_owned()),
            ..Default::default()
        }))
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.bucket(&req.input.bucket)?;
        Ok(S3Response::new(HeadBucketOutput {
            bucket_region: Some("us-east-1".to_owned()),
            ..Default::default()
        }))
    }

    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        self.fs.list_buckets(req).await
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.fs.get_bucket_location(req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(keys: &[&str]) -> BTreeMap<String, Object> {
        keys.iter()
            .map(|k| {
                (
                    (*k).to_owned(),
                    Object {
                        data: Bytes::from_static(b"x"),
                        modified: Timestamp::from(SystemTime::UNIX_EPOCH),
                        etag: String::new(),
                    },
                )
            })
            .collect()
    }

    fn names(l: &Listing) -> (Vec<&str>, Vec<&str>, Option<&str>) {
        (
            l.objects.iter().map(|o| o.0.as_str()).collect(),
            l.prefixes.iter().map(String::as_str).collect(),
            l.next.as_deref(),
        )
    }

    #[test]
    fn delimiter_rolls_up_and_pages() {
        let s = store(&["a/1/x", "a/1/y", "a/2/x", "a/k", "a/3/z", "b/1"]);
        let l = list(&s, "a/", Some("/"), None, 1000);
        assert_eq!(names(&l), (vec!["a/k"], vec!["a/1/", "a/2/", "a/3/"], None));
        let l = list(&s, "a/", Some("/"), None, 2);
        assert_eq!(names(&l), (vec![], vec!["a/1/", "a/2/"], Some("a/2/")));
        let l = list(&s, "a/", Some("/"), Some("a/2/"), 2);
        assert_eq!(names(&l), (vec!["a/k"], vec!["a/3/"], None));
    }

    #[test]
    fn start_after_and_prefix_end() {
        let s = store(&["p/2026/11/20/a", "p/2026/11/21/a", "p/2026/11/21/b", "q/x"]);
        let l = list(&s, "p/", None, Some("p/2026/11/21/"), 1000);
        assert_eq!(
            names(&l),
            (vec!["p/2026/11/21/a", "p/2026/11/21/b"], vec![], None)
        );
        let l = list(&s, "p/", None, Some("p/2026/11/21/a"), 1);
        assert_eq!(names(&l), (vec!["p/2026/11/21/b"], vec![], None));
        let l = list(&s, "p/", None, None, 1);
        assert_eq!(
            names(&l),
            (vec!["p/2026/11/20/a"], vec![], Some("p/2026/11/20/a"))
        );
    }
}
