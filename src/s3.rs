//! The S3 connection: credentials, region, endpoint, timeouts and retries, and the two calls
//! this tool makes (a delimiter or prefix listing, and a download), with errors turned into
//! advice a user can act on.
//!
//! Credentials come only from the standard AWS chain (environment, profiles, SSO, web
//! identity, container and instance roles); nothing here reads or prints a secret. What to list
//! is `listing`'s business; what to do with a body is `collect`'s.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::interceptors::FinalizerInterceptorContextRef;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

/// The region used when neither `--region` nor the AWS configuration names one.
pub const FALLBACK_REGION: &str = "us-east-1";
const MAX_ATTEMPTS: u32 = 5;

/// How to reach the bucket: the flags shared by every command.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
}

/// A connected bucket.
#[derive(Clone, Debug)]
pub struct Bucket {
    client: Client,
    name: String,
    /// The resolved AWS configuration, for the calls `check` makes besides S3.
    shared: aws_config::SdkConfig,
}

/// One page of a listing.
#[derive(Debug, Default)]
pub struct Page {
    pub objects: Vec<Listed>,
    pub folders: Vec<String>,
    pub next: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Listed {
    pub key: String,
    pub size: u64,
}

impl Bucket {
    pub async fn connect(name: &str, conn: &Connection) -> Bucket {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(MAX_ATTEMPTS)
                    .with_initial_backoff(Duration::from_millis(200))
                    .with_max_backoff(Duration::from_secs(10)),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .read_timeout(Duration::from_secs(30))
                    .build(),
            );
        if let Some(region) = &conn.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(profile) = &conn.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(endpoint) = &conn.endpoint_url {
            loader = loader.endpoint_url(endpoint);
        }
        let shared = loader.load().await;
        let mut config = aws_sdk_s3::config::Builder::from(&shared)
            // S3-compatible servers (and `localhost`) cannot take the bucket in the host name.
            .force_path_style(conn.endpoint_url.is_some());
        if shared.region().is_none() {
            config = config.region(Region::from_static(FALLBACK_REGION));
        }
        let config = config.build();
        Bucket {
            client: Client::from_conf(config),
            name: name.to_owned(),
            shared,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The region the client signs for.
    pub fn region(&self) -> String {
        self.client
            .config()
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| FALLBACK_REGION.to_owned())
    }

    /// A copy of this bucket's client that signs for another region.
    pub fn in_region(&self, region: &str) -> Bucket {
        let config = self
            .client
            .config()
            .to_builder()
            .region(Region::new(region.to_owned()))
            .build();
        Bucket {
            client: Client::from_conf(config),
            name: self.name.clone(),
            shared: self.shared.clone(),
        }
    }

    /// One page of keys under `prefix`; with `delimiter`, the sub-folders instead of
    /// everything below them. `start_after` skips keys up to and including it.
    pub async fn list_page(
        &self,
        prefix: &str,
        delimiter: bool,
        start_after: Option<&str>,
        continuation: Option<String>,
    ) -> Result<Page, S3Error> {
        let mut request = self
            .client
            .list_objects_v2()
            .bucket(&self.name)
            .prefix(prefix)
            .set_start_after(start_after.map(str::to_owned))
            .set_continuation_token(continuation);
        if delimiter {
            request = request.delimiter("/");
        }
        let out = request
            .customize()
            .interceptor(RetryReporter::new(format!(
                "listing s3://{}/{prefix}",
                self.name
            )))
            .send()
            .await
            .map_err(|e| S3Error::from_sdk(&e, &self.name, prefix))?;
        let objects = out
            .contents()
            .iter()
            .filter_map(|o| {
                Some(Listed {
                    key: o.key()?.to_owned(),
                    size: o.size().unwrap_or(0).max(0) as u64,
                })
            })
            .collect();
        let folders = out
            .common_prefixes()
            .iter()
            .filter_map(|p| p.prefix().map(str::to_owned))
            .collect();
        let next = if out.is_truncated() == Some(true) {
            out.next_continuation_token().map(str::to_owned)
        } else {
            None
        };
        Ok(Page {
            objects,
            folders,
            next,
        })
    }

    /// All sub-folders of `prefix` (a delimiter listing, every page).
    pub async fn list_folders(&self, prefix: &str) -> Result<Vec<String>, S3Error> {
        let mut folders = Vec::new();
        let mut continuation = None;
        loop {
            let page = self.list_page(prefix, true, None, continuation).await?;
            folders.extend(page.folders);
            match page.next {
                Some(token) => continuation = Some(token),
                None => return Ok(folders),
            }
        }
    }

    /// The resolved AWS configuration (credentials, region, endpoint, retries, timeouts), for
    /// the other services a run talks to.
    pub fn shared(&self) -> &aws_config::SdkConfig {
        &self.shared
    }

    /// The stored size of an object (HeadObject, which needs s3:GetObject).
    pub async fn size_of(&self, key: &str) -> Result<u64, S3Error> {
        let out = self
            .client
            .head_object()
            .bucket(&self.name)
            .key(key)
            .send()
            .await
            .map_err(|e| S3Error::from_sdk(&e, &self.name, key))?;
        Ok(u64::try_from(out.content_length().unwrap_or(0)).unwrap_or(0))
    }

    /// Starts a download; the body streams as it is read.
    pub async fn get(&self, key: &str) -> Result<ByteStream, S3Error> {
        self.get_from(key, 0).await
    }

    /// Starts a download at byte `offset` of the stored (compressed) object.
    pub async fn get_from(&self, key: &str, offset: u64) -> Result<ByteStream, S3Error> {
        let out = self
            .client
            .get_object()
            .bucket(&self.name)
            .key(key)
            .set_range((offset > 0).then(|| format!("bytes={offset}-")))
            .customize()
            .interceptor(RetryReporter::new(format!("s3://{}/{key}", self.name)))
            .send()
            .await
            .map_err(|e| S3Error::from_sdk(&e, &self.name, key))?;
        Ok(out.body)
    }

    /// The region S3 says the bucket is in (a HeadBucket call, which needs s3:ListBucket).
    pub async fn locate(&self) -> Result<Option<String>, S3Error> {
        let out = self
            .client
            .head_bucket()
            .bucket(&self.name)
            .send()
            .await
            .map_err(|e| S3Error::from_sdk(&e, &self.name, ""))?;
        Ok(out.bucket_region().map(str::to_owned))
    }

    /// Whether the credential chain yields credentials at all, without printing them: the
    /// chain's own explanation when it does not.
    pub async fn has_credentials(&self) -> Result<(), String> {
        use aws_sdk_s3::config::ProvideCredentials;
        let Some(provider) = self.shared.credentials_provider() else {
            return Err("no credential provider is configured".to_owned());
        };
        provider
            .provide_credentials()
            .await
            .map(drop)
            .map_err(|e| error_chain(&e))
    }

    /// The ARN the credentials stand for (STS GetCallerIdentity, which needs no permission),
    /// asked of `--endpoint-url` when one is set, as S3-compatible test servers serve it too.
    pub async fn caller_arn(&self) -> Result<String, String> {
        let config = aws_sdk_sts::config::Builder::from(&self.shared)
            .region(Region::new(self.region()))
            .build();
        let out = aws_sdk_sts::Client::from_conf(config)
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| match &e {
                SdkError::ServiceError(service) => format!(
                    "{}: {}",
                    service.err().code().unwrap_or("error"),
                    service.err().message().unwrap_or("(no message)")
                ),
                _ => error_chain(&e),
            })?;
        out.arn()
            .map(str::to_owned)
            .ok_or_else(|| "STS answered without an ARN".to_owned())
    }
}

/// What kind of failure an S3 call met: decides whether it is worth retrying and what advice
/// goes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum S3ErrorKind {
    NoSuchBucket,
    AccessDenied,
    /// The bucket is in another region than the client signs for (the right one, when S3 said).
    WrongRegion(Option<String>),
    NoCredentials,
    BadCredentials,
    Unreachable,
    Timeout,
    Other,
}

/// A failed S3 call, with the bucket or key it was about.
#[derive(Debug)]
pub struct S3Error {
    pub kind: S3ErrorKind,
    pub bucket: String,
    pub target: String,
    detail: String,
}

impl S3Error {
    fn from_sdk<E>(err: &SdkError<E, HttpResponse>, bucket: &str, target: &str) -> S3Error
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let detail = cause(err);
        let kind = match err {
            SdkError::ServiceError(service) => {
                let code = service.err().code().unwrap_or_default();
                let status = service.raw().status().as_u16();
                match code {
                    "NoSuchBucket" => S3ErrorKind::NoSuchBucket,
                    "AccessDenied" | "AllAccessDisabled" | "AccountProblem" => {
                        S3ErrorKind::AccessDenied
                    }
                    "InvalidAccessKeyId"
                    | "SignatureDoesNotMatch"
                    | "ExpiredToken"
                    | "InvalidToken"
                    | "TokenRefreshRequired" => S3ErrorKind::BadCredentials,
                    "PermanentRedirect"
                    | "AuthorizationHeaderMalformed"
                    | "IllegalLocationConstraintException" => {
                        S3ErrorKind::WrongRegion(bucket_region(service.raw()))
                    }
                    _ if status == 301 => S3ErrorKind::WrongRegion(bucket_region(service.raw())),
                    _ if status == 403 => S3ErrorKind::AccessDenied,
                    _ if status == 404 && code.is_empty() => S3ErrorKind::NoSuchBucket,
                    _ => S3ErrorKind::Other,
                }
            }
            SdkError::TimeoutError(_) => S3ErrorKind::Timeout,
            SdkError::DispatchFailure(failure) if failure.is_timeout() => S3ErrorKind::Timeout,
            SdkError::DispatchFailure(failure) if failure.is_io() => S3ErrorKind::Unreachable,
            _ if detail.contains("no credentials") || detail.contains("credential provider") => {
                S3ErrorKind::NoCredentials
            }
            _ => S3ErrorKind::Other,
        };
        S3Error {
            kind,
            bucket: bucket.to_owned(),
            target: target.to_owned(),
            detail,
        }
    }
}

impl fmt::Display for S3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let S3Error { bucket, target, .. } = self;
        match &self.kind {
            S3ErrorKind::NoSuchBucket => write!(
                f,
                "bucket {bucket:?} does not exist (check --bucket, and --endpoint-url if you use one)"
            ),
            S3ErrorKind::AccessDenied => write!(
                f,
                "access denied on s3://{bucket}/{target}: the credentials need s3:ListBucket on the \
                 bucket and s3:GetObject on its keys (and kms:Decrypt on the trail's KMS key if it \
                 has one)"
            ),
            S3ErrorKind::WrongRegion(Some(region)) => write!(
                f,
                "bucket {bucket:?} is in region {region}: pass --region {region}"
            ),
            S3ErrorKind::WrongRegion(None) => write!(
                f,
                "bucket {bucket:?} is in another region than the one configured: pass --region"
            ),
            S3ErrorKind::NoCredentials => write!(
                f,
                "no AWS credentials found: set AWS_PROFILE or --profile, AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY, or run where an instance or container role is available"
            ),
            S3ErrorKind::BadCredentials => write!(
                f,
                "S3 refused the credentials for bucket {bucket:?} (unknown, expired or mistyped \
                 key): check the profile or environment the agent runs with"
            ),
            S3ErrorKind::Unreachable => write!(
                f,
                "cannot reach S3 for s3://{bucket}/{target} (network, proxy or --endpoint-url)"
            ),
            S3ErrorKind::Timeout => write!(f, "S3 did not answer in time for s3://{bucket}/{target}"),
            S3ErrorKind::Other => write!(f, "S3 call failed for s3://{bucket}/{target}"),
        }?;
        if !matches!(self.kind, S3ErrorKind::WrongRegion(Some(_))) {
            write!(f, " [{}]", self.detail)?;
        }
        Ok(())
    }
}

impl std::error::Error for S3Error {}

/// The cause of a failed call in one line: the service's own code and message, or the chain
/// of underlying errors, without the SDK's debug dumps.
pub(crate) fn cause<E>(err: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if let SdkError::ServiceError(service) = err {
        let e = service.err();
        return format!(
            "HTTP {} {}: {}",
            service.raw().status().as_u16(),
            e.code().unwrap_or("(no code)"),
            e.message().unwrap_or("(no message)")
        );
    }
    error_chain(err)
}

/// The region S3 says the bucket is in, on a redirect or a region error.
fn bucket_region(response: &HttpResponse) -> Option<String> {
    response
        .headers()
        .get("x-amz-bucket-region")
        .map(str::to_owned)
}

/// Says on stderr, naming the object or listing, when an S3 request failed and the SDK is
/// about to retry it: otherwise a throttled or flaky bucket only shows as a slow run. The SDK
/// retries with jittered exponential backoff itself; a request that fails every attempt is
/// reported by its caller, so the last attempt says nothing here.
#[derive(Debug)]
struct RetryReporter {
    what: String,
    attempts: AtomicU32,
}

impl RetryReporter {
    fn new(what: String) -> RetryReporter {
        RetryReporter {
            what,
            attempts: AtomicU32::new(0),
        }
    }
}

impl Intercept for RetryReporter {
    fn name(&self) -> &'static str {
        "RetryReporter"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let attempt = self.attempts.fetch_add(1, Ordering::Relaxed) + 1;
        if attempt >= MAX_ATTEMPTS {
            return Ok(());
        }
        let what = &self.what;
        match context.response() {
            Some(response) => {
                let status = response.status().as_u16();
                let reason = match status {
                    500 => "internal error",
                    503 => "slow down",
                    429 => "too many requests",
                    502 | 504 => "gateway error",
                    _ => return Ok(()),
                };
                tracing::warn!(
                    "{what}: HTTP {status} ({reason}) on attempt {attempt} of {MAX_ATTEMPTS}; \
                     retrying with backoff"
                );
            }
            None => {
                // Only what the SDK retries: a broken connection or a timeout, not a missing
                // credential.
                if let Some(Err(e)) = context.output_or_error().filter(|r| match r {
                    Err(e) => {
                        e.is_timeout_error()
                            || e.as_connector_error()
                                .is_some_and(|c| c.is_io() || c.is_timeout())
                    }
                    Ok(_) => false,
                }) {
                    tracing::warn!(
                        "{what}: request failed on attempt {attempt} of {MAX_ATTEMPTS} ({}); \
                         retrying with backoff",
                        error_chain(e)
                    );
                }
            }
        }
        Ok(())
    }
}

/// An error and its sources in one line.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string().replace('\n', "; ");
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}
