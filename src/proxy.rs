//! Which HTTP proxy the AWS requests go through, and the HTTP client that sends them so.
//!
//! `--proxy URL` sends every request (S3, STS, SQS, and the credential endpoints) through one
//! proxy. Without it, the proxy environment is read as the AWS CLI reads it (Python's
//! `getproxies`): `https_proxy` / `HTTPS_PROXY` for https:// requests, `http_proxy` /
//! `HTTP_PROXY` for http:// ones (an `--endpoint-url http://...`, instance metadata), the
//! lowercase form first, an empty one meaning none; `ALL_PROXY` is not used. `no_proxy` /
//! `NO_PROXY` lists hosts, domains (with their sub-domains) and IP ranges that bypass the proxy,
//! also with `--proxy`. A URL without a scheme means `http://`. An https:// request goes
//! through an HTTP `CONNECT` tunnel; an http:// one is sent to the proxy with its absolute URI.
//!
//! A proxy URL may carry a user and password (`http://USER:PASSWORD@HOST:PORT`, sent as
//! `Proxy-Authorization: Basic`): they never appear in any message, see [`mask`].

use std::fmt;

use aws_sdk_s3::config::http::HttpRequest;
use aws_sdk_s3::config::{HttpClient, RuntimeComponents, SharedHttpClient};
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};

/// One proxy and where it was configured.
#[derive(Clone, PartialEq, Eq)]
struct Setting {
    /// With its scheme; may hold a user and password.
    url: String,
    /// `--proxy`, or the environment variable it came from.
    source: String,
}

impl fmt::Debug for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", mask(&self.url), self.source)
    }
}

/// The proxies for http:// and https:// requests, and the hosts that bypass them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proxies {
    http: Option<Setting>,
    https: Option<Setting>,
    no_proxy: Option<String>,
}

impl Proxies {
    /// `--proxy` when given, else the process environment. The error names the flag or
    /// variable, its value masked.
    pub fn resolve(flag: Option<&str>) -> Result<Proxies, String> {
        Proxies::from_lookup(flag, |name| std::env::var(name).ok())
    }

    /// As [`Proxies::resolve`], with `env` for the environment.
    pub fn from_lookup(
        flag: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Proxies, String> {
        // Python's rule: the lowercase variable wins when it is set at all (empty: no proxy).
        let variable = |lower: &str| -> Option<Setting> {
            let upper = lower.to_ascii_uppercase();
            let (name, value) = match env(lower) {
                Some(value) => (lower.to_owned(), value),
                None => (upper.clone(), env(&upper)?),
            };
            let value = value.trim().to_owned();
            (!value.is_empty()).then_some(Setting {
                url: value,
                source: name,
            })
        };
        let (http, https) = match flag {
            Some(url) => {
                let setting = Setting {
                    url: url.trim().to_owned(),
                    source: "--proxy".to_owned(),
                };
                (Some(setting.clone()), Some(setting))
            }
            None => (variable("http_proxy"), variable("https_proxy")),
        };
        let checked = |setting: Option<Setting>| -> Result<Option<Setting>, String> {
            setting
                .map(|mut s| {
                    s.url = normalize(&s.url).map_err(|reason| {
                        format!(
                            "{} {} is not a proxy URL ({reason}): expected \
                             http://[USER:PASSWORD@]HOST:PORT",
                            s.source,
                            mask(&s.url)
                        )
                    })?;
                    Ok(s)
                })
                .transpose()
        };
        let no_proxy = variable("no_proxy").map(|s| s.url);
        Ok(Proxies {
            http: checked(http)?,
            https: checked(https)?,
            no_proxy,
        })
    }

    /// Where requests go, in one line for people, the proxies masked; `None` without a proxy.
    pub fn describe(&self) -> Option<String> {
        let route = |s: &Setting| format!("{} (from {})", mask(&s.url), s.source);
        let mut text = match (&self.http, &self.https) {
            (None, None) => return None,
            (Some(h), Some(s)) if h == s => format!("all requests through {}", route(h)),
            (Some(h), Some(s)) => format!(
                "https:// requests through {}, http:// requests through {}",
                route(s),
                route(h)
            ),
            (None, Some(s)) => format!(
                "https:// requests through {} (http:// ones directly)",
                route(s)
            ),
            (Some(h), None) => format!(
                "http:// requests through {} (https:// ones directly)",
                route(h)
            ),
        };
        if let Some(hosts) = &self.no_proxy {
            text.push_str(&format!("; not for {hosts} (NO_PROXY)"));
        }
        Some(text)
    }

    /// The HTTP client for the AWS SDK (rustls with ring), sending through these proxies.
    pub fn http_client(&self) -> SharedHttpClient {
        let config = |scope: Scope, s: &Setting| {
            let url = s.url.as_str();
            // Checked by `normalize` already, so this does not fail.
            let made = match scope {
                Scope::All => ProxyConfig::all(url),
                Scope::Http => ProxyConfig::http(url),
                Scope::Https => ProxyConfig::https(url),
            };
            let config = made.unwrap_or_else(|_| ProxyConfig::disabled());
            match &self.no_proxy {
                Some(hosts) => config.no_proxy(hosts),
                None => config,
            }
        };
        match (&self.http, &self.https) {
            (None, None) => client(None),
            (Some(h), Some(s)) if h.url == s.url => client(Some(config(Scope::All, h))),
            (Some(h), None) => client(Some(config(Scope::Http, h))),
            (None, Some(s)) => client(Some(config(Scope::Https, s))),
            // The client's proxy configuration takes one proxy: one client per scheme.
            (Some(h), Some(s)) => SharedHttpClient::new(ByScheme {
                http: client(Some(config(Scope::Http, h))),
                https: client(Some(config(Scope::Https, s))),
            }),
        }
    }
}

/// Which requests a proxy configuration takes.
#[derive(Clone, Copy)]
enum Scope {
    All,
    Http,
    Https,
}

fn client(proxy: Option<ProxyConfig>) -> SharedHttpClient {
    let builder = aws_smithy_http_client::Builder::new();
    let Some(proxy) = proxy else {
        return builder
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build_https();
    };
    // What `build_https` does, plus the proxy, which only the connector builder takes.
    builder.build_with_connector_fn(move |settings, components| {
        let mut connector = aws_smithy_http_client::Connector::builder();
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector
            .proxy_config(proxy.clone())
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build()
    })
}

/// Sends http:// requests with one client and https:// ones with another.
#[derive(Debug)]
struct ByScheme {
    http: SharedHttpClient,
    https: SharedHttpClient,
}

impl HttpClient for ByScheme {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(BySchemeConnector {
            http: self.http.http_connector(settings, components),
            https: self.https.http_connector(settings, components),
        })
    }
}

#[derive(Debug)]
struct BySchemeConnector {
    http: SharedHttpConnector,
    https: SharedHttpConnector,
}

impl HttpConnector for BySchemeConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        if request.uri().starts_with("http://") {
            self.http.call(request)
        } else {
            self.https.call(request)
        }
    }
}

/// `url` with a scheme (`http://` when it has none), checked: http or https, with a host.
fn normalize(url: &str) -> Result<String, &'static str> {
    let url = if url.contains("://") {
        url.to_owned()
    } else {
        format!("http://{url}")
    };
    let (scheme, rest) = url.split_once("://").unwrap_or(("", &url));
    if !matches!(scheme, "http" | "https") {
        return Err("the scheme must be http or https");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') {
        return Err("no host");
    }
    // The client's own check (its error never holds the URL).
    ProxyConfig::all(url.as_str()).map_err(|_| "not a URL")?;
    Ok(url)
}

/// `url` with any user and password replaced by `***`: `http://***@proxy:3128`. Every message
/// that shows a proxy URL shows it through this.
pub fn mask(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rfind('@') {
        Some(at) => format!("{scheme}***{}{path}", &authority[at..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn masks_the_user_and_password_only() {
        assert_eq!(
            mask("http://alice:s3cret@proxy:3128"),
            "http://***@proxy:3128"
        );
        assert_eq!(
            mask("http://a:b@c@proxy:3128/x@y"),
            "http://***@proxy:3128/x@y"
        );
        assert_eq!(mask("alice:s3cret@proxy:3128"), "***@proxy:3128");
        assert_eq!(mask("http://proxy:3128"), "http://proxy:3128");
    }

    #[test]
    fn reads_the_environment_as_the_aws_cli_does() {
        let p = Proxies::from_lookup(
            None,
            env(&[
                ("HTTPS_PROXY", "http://upper:1"),
                ("https_proxy", "lower:2"),
                ("HTTP_PROXY", "http://plain:3"),
                ("ALL_PROXY", "http://all:4"),
                ("NO_PROXY", "127.0.0.1,.internal"),
            ]),
        )
        .unwrap();
        assert_eq!(p.https.as_ref().unwrap().url, "http://lower:2");
        assert_eq!(p.https.as_ref().unwrap().source, "https_proxy");
        assert_eq!(p.http.as_ref().unwrap().url, "http://plain:3");
        assert_eq!(p.no_proxy.as_deref(), Some("127.0.0.1,.internal"));

        // An empty lowercase variable turns the uppercase one off; ALL_PROXY alone is unused.
        let p = Proxies::from_lookup(
            None,
            env(&[
                ("https_proxy", ""),
                ("HTTPS_PROXY", "http://x:1"),
                ("ALL_PROXY", "http://all:4"),
            ]),
        )
        .unwrap();
        assert!(p.http.is_none() && p.https.is_none(), "{p:?}");
        assert_eq!(p.describe(), None);
    }

    #[test]
    fn the_flag_wins_over_the_environment_but_not_over_no_proxy() {
        let p = Proxies::from_lookup(
            Some("http://u:p@flag:8080"),
            env(&[("HTTPS_PROXY", "http://env:1"), ("no_proxy", "localhost")]),
        )
        .unwrap();
        assert_eq!(p.http, p.https);
        assert_eq!(
            p.describe().unwrap(),
            "all requests through http://***@flag:8080 (from --proxy); not for localhost (NO_PROXY)"
        );
    }

    #[test]
    fn a_bad_url_is_refused_without_its_password() {
        for bad in [
            "ftp://u:hunter2@proxy:21",
            "http://u:hunter2@",
            "http://u:hunter2@a b:1",
        ] {
            let err = Proxies::from_lookup(Some(bad), env(&[])).unwrap_err();
            assert!(err.starts_with("--proxy "), "{err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
        let err = Proxies::from_lookup(None, env(&[("HTTPS_PROXY", "gopher://u:hunter2@x:1")]))
            .unwrap_err();
        assert!(err.starts_with("HTTPS_PROXY "), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
}
