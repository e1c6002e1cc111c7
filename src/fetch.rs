//! Downloads object bodies: whole into memory for the usual small CloudTrail file, or as a
//! blocking stream for a large one, so memory stays bounded whatever the object's size.
//!
//! The SDK already retries failed requests with jittered backoff; this module adds retries for
//! a body that breaks off after the response started (a connection reset mid-download).
//! It does not decode anything: that is `decode`.

use std::fmt;
use std::io::Read;
use std::pin::Pin;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use tokio::io::AsyncRead;
use tokio::runtime::Handle;
use tokio_util::io::SyncIoBridge;

use crate::s3::{Bucket, S3Error};

/// Objects up to this size (compressed) are downloaded whole, several at a time; larger ones
/// are streamed one at a time when their turn to print comes.
pub const WHOLE_OBJECT_LIMIT: u64 = 1024 * 1024;
const BODY_ATTEMPTS: u32 = 4;

#[derive(Debug)]
pub enum FetchError {
    /// The request failed (after the SDK's own retries).
    S3(S3Error),
    /// The body broke off every time it was downloaded.
    Body { attempts: u32, reason: String },
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::S3(e) => e.fmt(f),
            FetchError::Body { attempts, reason } => {
                write!(f, "download broke off {attempts} times, last: {reason}")
            }
        }
    }
}

impl std::error::Error for FetchError {}

/// Downloads all of `key`, starting over when the body breaks off.
pub async fn download(bucket: &Bucket, key: &str) -> Result<Bytes, FetchError> {
    let mut attempt = 1;
    loop {
        let body = bucket.get(key).await.map_err(FetchError::S3)?;
        match body.collect().await {
            Ok(data) => return Ok(data.into_bytes()),
            Err(e) if attempt < BODY_ATTEMPTS => {
                let wait = backoff(attempt, key);
                tracing::warn!(
                    "{key}: download broke off ({e}); retrying in {} ms",
                    wait.as_millis()
                );
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            Err(e) => {
                return Err(FetchError::Body {
                    attempts: attempt,
                    reason: e.to_string(),
                })
            }
        }
    }
}

/// Starts downloading `key` and hands the body over as a blocking reader, for a thread
/// outside the runtime. A body that breaks off is picked up where it broke (a ranged GET),
/// a few times; after that the break shows as a read error of the reader.
pub fn open_stream(
    runtime: &Handle,
    bucket: &Bucket,
    key: &str,
) -> Result<impl Read + Send + 'static, FetchError> {
    let body: ByteStream = runtime.block_on(bucket.get(key)).map_err(FetchError::S3)?;
    Ok(ResumingBody {
        body: bridge(body, runtime),
        runtime: runtime.clone(),
        bucket: bucket.clone(),
        key: key.to_owned(),
        offset: 0,
        attempt: 1,
    })
}

type Bridge = SyncIoBridge<Pin<Box<dyn AsyncRead + Send>>>;

fn bridge(body: ByteStream, runtime: &Handle) -> Bridge {
    SyncIoBridge::new_with_handle(Box::pin(body.into_async_read()), runtime.clone())
}

/// A streamed body that asks for the rest of the object when the connection breaks, so a
/// large object does not fail (and print only its first part) on one network hiccup.
struct ResumingBody {
    body: Bridge,
    runtime: Handle,
    bucket: Bucket,
    key: String,
    /// Bytes of the stored object received so far.
    offset: u64,
    attempt: u32,
}

impl Read for ResumingBody {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let error = match self.body.read(buf) {
                Ok(n) => {
                    self.offset += n as u64;
                    return Ok(n);
                }
                Err(e) if self.attempt < BODY_ATTEMPTS => e,
                Err(e) => return Err(e),
            };
            let wait = backoff(self.attempt, &self.key);
            tracing::warn!(
                "s3://{}/{}: download broke off at byte {} ({error}); resuming from there in {} ms",
                self.bucket.name(),
                self.key,
                self.offset,
                wait.as_millis()
            );
            std::thread::sleep(wait);
            self.attempt += 1;
            let rest = self
                .runtime
                .block_on(self.bucket.get_from(&self.key, self.offset))
                .map_err(std::io::Error::other)?;
            self.body = bridge(rest, &self.runtime);
        }
    }
}

/// Exponential backoff with jitter, so that retries of many objects do not arrive together.
fn backoff(attempt: u32, key: &str) -> Duration {
    use std::hash::{BuildHasher, RandomState};
    let base_ms = 200u64 << attempt.min(6);
    let jitter = RandomState::new().hash_one((key, attempt)) % base_ms;
    Duration::from_millis(base_ms / 2 + jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_jittered_within_bounds() {
        for attempt in 1..6 {
            let base = 200u64 << attempt;
            for _ in 0..20 {
                let wait = backoff(attempt, "k").as_millis() as u64;
                assert!(
                    (base / 2..base / 2 + base).contains(&wait),
                    "{attempt}: {wait}"
                );
            }
        }
    }
}
