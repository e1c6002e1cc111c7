//! The S3 connection: credentials, region, endpoint, timeouts and retries, and the two calls
//! this tool makes (a delimiter or prefix listing, and a download), with errors turned into
//! advice a user can act on.
//!
//! Credentials come only from the standard AWS chain (environment, profiles, SSO, web
//! identity, container and instance roles), optionally used to assume a role (`--role-arn`:
//! the usual cross-account layout, where a log-archive account owns the bucket); nothing here
//! reads or prints a secret. Requests go through the proxy `proxy` chooses. What to list is
//! `listing`'s business; what to do with a body is `collect`'s.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::interceptors::FinalizerInterceptorContextRef;
use aws_sdk_s3::config::{
    ConfigBag, Intercept, ProvideCredentials, RuntimeComponents, SharedCredentialsProvider,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use aws_sdk_sts::operation::assume_role::AssumeRoleError;

use crate::proxy::Proxies;

/// The region used when neither `--region` nor the AWS configuration names one.
pub const FALLBACK_REGION: &str = "us-east-1";
const MAX_ATTEMPTS: u32 = 5;

/// How to reach the bucket: the flags shared by every command.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
    /// A role to assume with the credentials the standard chain finds.
    pub role: Option<Role>,
    /// The proxies requests go through (`--proxy`, or the proxy environment).
    pub proxies: Proxies,
}

/// `--role-arn` and its companions: the role every request is made as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub arn: String,
    pub external_id: Option<String>,
    pub session_name: String,
    pub duration_seconds: u32,
}

/// A connected bucket.
#[derive(Clone, Debug)]
pub struct Bucket {
    client: Client,
    name: String,
    /// The resolved AWS configuration, for the calls `check` makes besides S3.
    shared: aws_config::SdkConfig,
    role: Option<Role>,
    /// With a role: the credentials the chain found, which assume it.
    base_credentials: Option<SharedCredentialsProvider>,
    proxies: Proxies,
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
        let http = conn.proxies.http_client();
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
        let mut shared = loader.load().await;
        let mut base_credentials = None;
        if let Some(role) = &conn.role {
            // STS is asked with the chain's credentials, through the same endpoint, proxy,
            // retries and timeouts; every client built from `shared` then shares the assumed
            // credentials (and their cache: one AssumeRole per run, renewed before they expire).
            let mut assume = AssumeRoleProvider::builder(&role.arn)
                .configure(&shared)
                .region(
                    shared
                        .region()
                        .cloned()
                        .unwrap_or_else(|| Region::from_static(FALLBACK_REGION)),
                )
                .session_name(&role.session_name)
                .session_length(Duration::from_secs(role.duration_seconds.into()));
            if let Some(id) = &role.external_id {
                assume = assume.external_id(id);
            }
            let assumed = SharedCredentialsProvider::new(assume.build().await);
            base_credentials = shared.credentials_provider();
            shared = shared.into_builder().credentials_provider(assumed).build();
        }
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
            role: conn.role.clone(),
            base_credentials,
            proxies: conn.proxies.clone(),
        }
    }

    /// The role requests are made as, if any.
    pub fn role(&self) -> Option<&Role> {
        self.role.as_ref()
    }

    /// Where requests go, when through a proxy (masked), for people.
    pub fn proxy_route(&self) -> Option<String> {
        self.proxies.describe()
    }

    fn error<E>(&self, err: &SdkError<E, HttpResponse>, target: &str) -> S3Error
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        S3Error::from_sdk(err, &self.name, target, self.role.as_ref())
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
            ..self.clone()
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
            .map_err(|e| self.error(&e, prefix))?;
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

    /// Every key under `prefix` that sorts after `start_after`, all pages, in key order.
    pub async fn list_after(
        &self,
        prefix: &str,
        start_after: &str,
    ) -> Result<Vec<Listed>, S3Error> {
        let mut objects = Vec::new();
        let mut continuation = None;
        loop {
            // StartAfter on the first page only: the continuation token carries it on.
            let first_page = continuation.is_none();
            let page = self
                .list_page(
                    prefix,
                    false,
                    first_page.then_some(start_after),
                    continuation,
                )
                .await?;
            objects.extend(page.objects);
            match page.next {
                Some(token) => continuation = Some(token),
                None => return Ok(objects),
            }
        }
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
        let out = self.head(key).await.map_err(|e| self.error(&e, key))?;
        Ok(u64::try_from(out.content_length().unwrap_or(0)).unwrap_or(0))
    }

    /// Whether `key` exists (HeadObject: a 404 is `false`, any other refusal an error).
    pub async fn exists(&self, key: &str) -> Result<bool, S3Error> {
        match self.head(key).await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
            Err(e) => Err(self.error(&e, key)),
        }
    }

    async fn head(
        &self,
        key: &str,
    ) -> Result<
        aws_sdk_s3::operation::head_object::HeadObjectOutput,
        SdkError<aws_sdk_s3::operation::head_object::HeadObjectError, HttpResponse>,
    > {
        self.client
            .head_object()
            .bucket(&self.name)
            .key(key)
            .send()
            .await
    }

    /// Downloads a small object whole, with the `x-amz-meta-signature` CloudTrail signs its
    /// digest files with.
    pub async fn get_signed(&self, key: &str) -> Result<(bytes::Bytes, Option<String>), S3Error> {
        let out = self
            .client
            .get_object()
            .bucket(&self.name)
            .key(key)
            .send()
            .await
            .map_err(|e| self.error(&e, key))?;
        let signature = out.metadata().and_then(|m| m.get("signature")).cloned();
        let data = out.body.collect().await.map_err(|e| S3Error {
            kind: S3ErrorKind::Other,
            bucket: self.name.clone(),
            target: key.to_owned(),
            detail: format!("the download broke off: {e}"),
        })?;
        Ok((data.into_bytes(), signature))
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
            .map_err(|e| self.error(&e, key))?;
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
            .map_err(|e| self.error(&e, ""))?;
        Ok(out.bucket_region().map(str::to_owned))
    }

    /// Whether the credential chain yields credentials at all, without printing them: the
    /// chain's own explanation when it does not. With a role, the chain's credentials, not
    /// yet the role's (see [`Bucket::assume_role`]).
    pub async fn has_credentials(&self) -> Result<(), String> {
        let Some(provider) = self
            .base_credentials
            .clone()
            .or_else(|| self.shared.credentials_provider())
        else {
            return Err("no credential provider is configured".to_owned());
        };
        provider
            .provide_credentials()
            .await
            .map(drop)
            .map_err(|e| error_chain(&e))
    }

    /// With a role: assumes it (STS AssumeRole), the error saying what the role's trust
    /// policy lacks when STS refuses.
    pub async fn assume_role(&self) -> Result<(), S3Error> {
        let Some(provider) = self.shared.credentials_provider() else {
            return Ok(());
        };
        provider.provide_credentials().await.map(drop).map_err(|e| {
            let (kind, detail) = match self.role.as_ref().and_then(|role| role_denial(&e, role)) {
                Some((denied, detail)) => (S3ErrorKind::AssumeRoleDenied(Box::new(denied)), detail),
                None => (S3ErrorKind::Other, error_chain(&e)),
            };
            S3Error {
                kind,
                bucket: self.name.clone(),
                target: String::new(),
                detail,
            }
        })
    }

    /// The ARN the credentials stand for (STS GetCallerIdentity, which needs no permission),
    /// asked of `--endpoint-url` when one is set, as S3-compatible test servers serve it too.
    /// With a role, the assumed role's session.
    pub async fn caller_arn(&self) -> Result<String, String> {
        self.identity(None).await
    }

    /// The ARN of the credentials the chain found: with a role, those that assume it.
    pub async fn base_caller_arn(&self) -> Result<String, String> {
        self.identity(self.base_credentials.clone()).await
    }

    async fn identity(
        &self,
        credentials: Option<SharedCredentialsProvider>,
    ) -> Result<String, String> {
        let mut config =
            aws_sdk_sts::config::Builder::from(&self.shared).region(Region::new(self.region()));
        if let Some(credentials) = credentials {
            config = config.credentials_provider(credentials);
        }
        let config = config.build();
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

/// The codes with which S3 and STS refuse credentials (unknown, mistyped or expired).
const BAD_CREDENTIALS: &[&str] = &[
    "InvalidAccessKeyId",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
];

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
    /// STS refused to let the chain's credentials assume `--role-arn`.
    AssumeRoleDenied(Box<RoleDenied>),
    Unreachable,
    Timeout,
    Other,
}

/// Why AssumeRole was refused, in the terms of the role's trust policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleDenied {
    pub role_arn: String,
    /// Whether `--external-id` was given.
    pub external_id: bool,
    /// Who asked: the identity of the chain's credentials, as STS named it.
    pub principal: Option<String>,
}

impl RoleDenied {
    /// What the trust policy's `Principal` names for `principal`: an assumed-role session
    /// (an instance or container role, `arn:PARTITION:sts::ACCOUNT:assumed-role/ROLE/SESSION`)
    /// stands for its role.
    fn trust_principal(&self) -> Option<String> {
        let principal = self.principal.as_deref()?;
        let parts: Vec<&str> = principal.splitn(6, ':').collect();
        if let [arn, partition, "sts", "", account, resource] = parts[..] {
            if let Some(role) = resource.strip_prefix("assumed-role/") {
                let role = role.split('/').next().unwrap_or(role);
                return Some(format!("{arn}:{partition}:iam::{account}:role/{role}"));
            }
        }
        Some(principal.to_owned())
    }

    /// What happened: "STS refused to let WHO assume the role ROLE (--role-arn)".
    pub fn refusal(&self) -> String {
        let who = self
            .principal
            .as_deref()
            .unwrap_or("the credentials the AWS chain found");
        format!(
            "STS refused to let {who} assume the role {} (--role-arn)",
            self.role_arn
        )
    }

    /// What the trust policy (and the principal's own policy) must allow.
    pub fn advice(&self) -> String {
        let role = &self.role_arn;
        let principal = self.trust_principal().unwrap_or_else(|| {
            "THE ARN OF THE CREDENTIALS THE CHAIN FINDS (ossec-cloudtrail check shows it)"
                .to_owned()
        });
        let (when, condition) = if self.external_id {
            (
                " when sts:ExternalId is the --external-id value",
                r#", "Condition": {"StringEquals": {"sts:ExternalId": "THE --external-id VALUE"}}"#,
            )
        } else {
            ("", "")
        };
        format!(
            "the role's trust policy must allow that principal sts:AssumeRole{when}: \
             {{\"Effect\": \"Allow\", \"Principal\": {{\"AWS\": \"{principal}\"}}, \
             \"Action\": \"sts:AssumeRole\"{condition}}}; and that principal's own IAM \
             policy must allow sts:AssumeRole on {role}"
        )
    }
}

impl fmt::Display for RoleDenied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.refusal(), self.advice())
    }
}

/// When `err` (a call of any service) failed because STS refused AssumeRole for `role`: the
/// whole explanation, STS's own words included.
pub(crate) fn role_denied_text(
    err: &(dyn std::error::Error + 'static),
    role: &Role,
) -> Option<String> {
    role_denial(err, role).map(|(denied, detail)| format!("{denied} [{detail}]"))
}

/// The AssumeRole call's own failure inside `err`, when STS answered it with an error.
fn assume_role_error<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a SdkError<AssumeRoleError, HttpResponse>> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(sts) = e.downcast_ref::<SdkError<AssumeRoleError, HttpResponse>>() {
            return matches!(sts, SdkError::ServiceError(_)).then_some(sts);
        }
        next = e.source();
    }
    None
}

/// When `err` failed because STS refused AssumeRole for `role`: the refusal, and STS's own
/// words for the detail.
fn role_denial(
    err: &(dyn std::error::Error + 'static),
    role: &Role,
) -> Option<(RoleDenied, String)> {
    let sts = assume_role_error(err)?;
    let SdkError::ServiceError(service) = sts else {
        return None;
    };
    if service.err().code() != Some("AccessDenied") {
        return None;
    }
    let message = service.err().message().unwrap_or_default();
    // AWS words it "User: ARN is not authorized to perform: sts:AssumeRole on ...".
    let principal = message
        .split("User: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .filter(|arn| arn.starts_with("arn:"))
        .map(str::to_owned);
    let denied = RoleDenied {
        role_arn: role.arn.clone(),
        external_id: role.external_id.is_some(),
        principal,
    };
    Some((denied, cause(sts)))
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
    fn from_sdk<E>(
        err: &SdkError<E, HttpResponse>,
        bucket: &str,
        target: &str,
        role: Option<&Role>,
    ) -> S3Error
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        if let Some((denied, detail)) = role.and_then(|role| role_denial(err, role)) {
            return S3Error {
                kind: S3ErrorKind::AssumeRoleDenied(Box::new(denied)),
                bucket: bucket.to_owned(),
                target: target.to_owned(),
                detail,
            };
        }
        // STS refused the chain's credentials themselves when asked to assume the role.
        if let Some(sts) = role.and(assume_role_error(err)) {
            let code = sts.code().unwrap_or_default();
            return S3Error {
                kind: if BAD_CREDENTIALS.contains(&code) {
                    S3ErrorKind::BadCredentials
                } else {
                    S3ErrorKind::Other
                },
                bucket: bucket.to_owned(),
                target: target.to_owned(),
                detail: format!("STS AssumeRole: {}", cause(sts)),
            };
        }
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
                    code if BAD_CREDENTIALS.contains(&code) => S3ErrorKind::BadCredentials,
                    "PermanentRedirect"
                    | "AuthorizationHeaderMalformed"
                    | "IllegalLocationConstraintException" => {
                        S3ErrorKind::WrongRegion(bucket_region(service.raw()))
                    }
                    _ if status == 301 => S3ErrorKind::WrongRegion(bucket_region(service.raw())),
                    // From the proxy, not S3 (an http:// request; through CONNECT it is a
                    // tunnel error).
                    _ if status == 407 => S3ErrorKind::Unreachable,
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
        let detail = match err {
            SdkError::ServiceError(service) if service.raw().status().as_u16() == 407 => {
                "HTTP 407 from the proxy: proxy authorization required (a user and password in \
                 the proxy URL, or other ones)"
                    .to_owned()
            }
            _ => detail,
        };
        S3Error {
            kind,
            bucket: bucket.to_owned(),
            target: target.to_owned(),
            detail,
        }
    }
}

impl S3Error {
    /// The service's own words, or the chain of underlying errors.
    pub fn detail(&self) -> &str {
        &self.detail
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
            S3ErrorKind::AssumeRoleDenied(denied) => write!(f, "{denied}"),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn denied(principal: Option<&str>, external_id: bool) -> RoleDenied {
        RoleDenied {
            role_arn: "arn:aws:iam::222233334444:role/reader".to_owned(),
            external_id,
            principal: principal.map(str::to_owned),
        }
    }

    #[test]
    fn the_trust_policy_names_the_role_behind_an_instance_session() {
        let d = denied(
            Some("arn:aws:sts::111122223333:assumed-role/wazuh-agent/i-0abc"),
            false,
        );
        assert_eq!(
            d.trust_principal().as_deref(),
            Some("arn:aws:iam::111122223333:role/wazuh-agent")
        );
        let d = denied(
            Some("arn:aws-cn:sts::111122223333:assumed-role/agent/s"),
            false,
        );
        assert_eq!(
            d.trust_principal().as_deref(),
            Some("arn:aws-cn:iam::111122223333:role/agent")
        );
        let d = denied(Some("arn:aws:iam::111122223333:user/alice"), true);
        assert_eq!(
            d.trust_principal().as_deref(),
            Some("arn:aws:iam::111122223333:user/alice")
        );
        assert!(d
            .advice()
            .contains(r#""sts:ExternalId": "THE --external-id VALUE""#));
        let d = denied(None, false);
        assert!(d.refusal().contains("the credentials the AWS chain found"));
        assert!(d.advice().contains("check shows it"), "{}", d.advice());
        assert!(!d.advice().contains("ExternalId"));
    }
}
