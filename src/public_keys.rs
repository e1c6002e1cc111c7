//! CloudTrail's public keys, which verify the signatures of digest files: from the file that
//! `--digest-public-keys` names (what `aws cloudtrail list-public-keys` prints, for agents
//! that may not call CloudTrail), or else from CloudTrail's `ListPublicKeys` in the trail's
//! home region, kept in the state by fingerprint so each key is asked for once.
//!
//! This module only finds keys; `digest` checks signatures with them.

use std::collections::HashMap;
use std::path::Path;

use aws_sdk_cloudtrail::primitives::DateTime;
use aws_sdk_s3::error::ProvideErrorMetadata;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::state::{State, StateError};

/// Where the keys come from.
pub struct PublicKeys {
    /// `--digest-public-keys`: the only source when given.
    from_file: Option<HashMap<String, Vec<u8>>>,
    aws: aws_config::SdkConfig,
}

/// Why a digest's key could not be had: the digest waits for a later run.
#[derive(Debug)]
pub enum KeyError {
    State(StateError),
    Missing(String),
}

impl From<StateError> for KeyError {
    fn from(e: StateError) -> Self {
        KeyError::State(e)
    }
}

impl PublicKeys {
    /// Reads `file` when given; the message of an error names the file and what is wrong.
    pub fn new(file: Option<&Path>, aws: &aws_config::SdkConfig) -> Result<PublicKeys, String> {
        let from_file = match file {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    format!("cannot read --digest-public-keys {}: {e}", path.display())
                })?;
                Some(parse_key_list(&text).map_err(|e| {
                    format!(
                        "--digest-public-keys {}: {e} (expected what `aws cloudtrail \
                         list-public-keys --output json` prints)",
                        path.display()
                    )
                })?)
            }
        };
        Ok(PublicKeys {
            from_file,
            aws: aws.clone(),
        })
    }

    /// The DER (PKCS #1) public key with `fingerprint`, for a digest of `home_region`'s trail
    /// covering `start`..`end` (RFC 3339).
    pub async fn get(
        &self,
        state: &State,
        fingerprint: &str,
        home_region: &str,
        start: &str,
        end: &str,
    ) -> Result<Vec<u8>, KeyError> {
        if let Some(keys) = &self.from_file {
            return keys.get(fingerprint).cloned().ok_or_else(|| {
                KeyError::Missing(format!(
                    "no public key with fingerprint {fingerprint} in --digest-public-keys \
                     (refresh it with `aws cloudtrail list-public-keys --region {home_region}`)"
                ))
            });
        }
        if let Some(der) = state.public_key(fingerprint)? {
            return Ok(der);
        }
        let keys = self
            .list(home_region, start, end)
            .await
            .map_err(KeyError::Missing)?;
        for (found, der) in &keys {
            state.set_public_key(found, der)?;
        }
        keys.get(fingerprint).cloned().ok_or_else(|| {
            KeyError::Missing(format!(
                "CloudTrail in {home_region} lists no public key with fingerprint \
                 {fingerprint} for {start} to {end}"
            ))
        })
    }

    async fn list(
        &self,
        region: &str,
        start: &str,
        end: &str,
    ) -> Result<HashMap<String, Vec<u8>>, String> {
        let seconds = |text: &str| {
            OffsetDateTime::parse(text, &Rfc3339)
                .map(|t| t.unix_timestamp())
                .map_err(|e| format!("bad digest time {text}: {e}"))
        };
        let config = aws_sdk_cloudtrail::config::Builder::from(&self.aws)
            .region(aws_config::Region::new(region.to_owned()))
            .build();
        let client = aws_sdk_cloudtrail::Client::from_conf(config);
        let mut keys = HashMap::new();
        let mut token = None;
        loop {
            // A key valid for part of the hour still signs it: ask from an hour before.
            let out = client
                .list_public_keys()
                .start_time(DateTime::from_secs(seconds(start)? - 3600))
                .end_time(DateTime::from_secs(seconds(end)?))
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "CloudTrail ListPublicKeys in {region} failed: {} (the agent needs \
                         cloudtrail:ListPublicKeys, or give --digest-public-keys FILE)",
                        e.message()
                            .map(str::to_owned)
                            .unwrap_or_else(|| crate::s3::error_chain(&e))
                    )
                })?;
            for key in out.public_key_list() {
                if let (Some(fingerprint), Some(value)) = (key.fingerprint(), key.value()) {
                    keys.insert(fingerprint.to_owned(), value.as_ref().to_vec());
                }
            }
            token = out.next_token().map(str::to_owned);
            if token.is_none() {
                return Ok(keys);
            }
        }
    }
}

/// `{"PublicKeyList": [{"Value": BASE64, "Fingerprint": HEX, ...}]}` to DER keys by
/// fingerprint.
fn parse_key_list(text: &str) -> Result<HashMap<String, Vec<u8>>, String> {
    let document: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let list = document
        .get("PublicKeyList")
        .and_then(Value::as_array)
        .ok_or("no PublicKeyList array")?;
    let mut keys = HashMap::new();
    for (i, entry) in list.iter().enumerate() {
        let member = |name: &str| {
            entry
                .get(name)
                .and_then(Value::as_str)
                .ok_or(format!("entry {} has no {name}", i + 1))
        };
        let der = aws_smithy_types::base64::decode(member("Value")?)
            .map_err(|e| format!("entry {}: Value is not base64: {e}", i + 1))?;
        keys.insert(member("Fingerprint")?.to_owned(), der);
    }
    if keys.is_empty() {
        return Err("PublicKeyList is empty".to_owned());
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_cli_prints_and_names_what_is_wrong() {
        let keys = parse_key_list(
            r#"{"PublicKeyList":[{"Value":"AQID","ValidityStartTime":"2026-11-01T00:00:00+00:00",
                "ValidityEndTime":"2026-12-01T00:00:00+00:00","Fingerprint":"ab12"}]}"#,
        )
        .unwrap();
        assert_eq!(keys["ab12"], vec![1, 2, 3]);
        let cases = [
            ("[]", "no PublicKeyList"),
            (r#"{"PublicKeyList":[]}"#, "empty"),
            (
                r#"{"PublicKeyList":[{"Value":"AQID"}]}"#,
                "entry 1 has no Fingerprint",
            ),
            (
                r#"{"PublicKeyList":[{"Value":"*","Fingerprint":"a"}]}"#,
                "not base64",
            ),
            ("{", "not JSON"),
        ];
        for (text, expected) in cases {
            let error = parse_key_list(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
