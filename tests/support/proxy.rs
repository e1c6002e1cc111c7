//! A small fault-injecting HTTP/1.1 proxy that sits between the collector and the real S3
//! server. It forwards every request, except those a [`Rule`] picks, which get an S3 error, a
//! reset connection, a body cut short, a redirect or a delay instead. It also logs each
//! request, so tests can count what a run asked of S3.
//!
//! One thread per client connection, keep-alive towards the client (as the SDK expects), one
//! upstream connection per request (`Connection: close`), so that the whole upstream response
//! is known before anything of it is sent and a fault can be placed anywhere in it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a matching request gets instead of the server's answer.
#[derive(Debug, Clone)]
pub enum Fault {
    /// 503 SlowDown, as S3 answers when throttling.
    SlowDown,
    /// 500 InternalError.
    InternalError,
    /// The connection is closed without an answer.
    Reset,
    /// The real answer, with its full Content-Length, but only this many body bytes, then the
    /// connection is closed.
    CutBody(usize),
    /// 403 AccessDenied, worded as S3 does when the reader may not use the object's KMS key.
    KmsDenied,
    /// 301 PermanentRedirect naming this region, for requests not signed for it.
    WrongRegion(&'static str),
    /// The real answer, late.
    Delay(Duration),
    /// Any S3 error: HTTP status, code and message.
    Error(u16, &'static str, &'static str),
    /// An error as the query-protocol services (STS) word it: HTTP status, code and message.
    QueryError(u16, &'static str, &'static str),
    /// A 200 answer of a JSON-protocol service (CloudTrail) with this body, for a call the
    /// local server does not implement.
    Json(&'static str),
}

/// Which requests a fault hits.
#[derive(Debug, Clone)]
pub struct Rule {
    /// `GET`, `HEAD`...; `None` for any.
    pub method: Option<&'static str>,
    /// A substring of the decoded request target (path and query); `None` for any.
    pub target: Option<String>,
    /// A substring of the request body (an STS call names its action there); `None` for any.
    pub body: Option<String>,
    /// `LIST` requests only (a `list-type` query), or object requests only.
    pub list: Option<bool>,
    /// Matching requests let through before the first fault.
    pub skip: usize,
    /// Fault every `every`-th matching request after `skip` (1: each one).
    pub every: usize,
    /// Faults at most this many times.
    pub times: usize,
    pub fault: Fault,
    matched: usize,
    fired: usize,
}

impl Rule {
    /// Every request, forever, until narrowed down with the builder methods.
    pub fn new(fault: Fault) -> Rule {
        Rule {
            method: None,
            target: None,
            body: None,
            list: None,
            skip: 0,
            every: 1,
            times: usize::MAX,
            fault,
            matched: 0,
            fired: 0,
        }
    }
    pub fn on_key(mut self, key: &str) -> Rule {
        self.target = Some(key.to_owned());
        self
    }
    /// Requests whose body holds `text`, such as `Action=AssumeRole`.
    pub fn on_body(mut self, text: &str) -> Rule {
        self.body = Some(text.to_owned());
        self
    }
    pub fn gets(mut self) -> Rule {
        self.method = Some("GET");
        self.list = Some(false);
        self
    }
    pub fn lists(mut self) -> Rule {
        self.list = Some(true);
        self
    }
    pub fn skip(mut self, n: usize) -> Rule {
        self.skip = n;
        self
    }
    pub fn every(mut self, n: usize) -> Rule {
        self.every = n.max(1);
        self
    }
    pub fn times(mut self, n: usize) -> Rule {
        self.times = n;
        self
    }

    fn hits(&mut self, request: &Request) -> bool {
        if self.method.is_some_and(|m| m != request.method)
            || self
                .target
                .as_ref()
                .is_some_and(|t| !request.target.contains(t.as_str()))
            || self
                .body
                .as_ref()
                .is_some_and(|b| !request.body.contains(b.as_str()))
            || self.list.is_some_and(|l| l != request.is_list())
        {
            return false;
        }
        if let Fault::WrongRegion(region) = self.fault {
            if request.signed_for(region) {
                return false;
            }
        }
        self.matched += 1;
        let n = self.matched;
        if n <= self.skip
            || !(n - self.skip - 1).is_multiple_of(self.every)
            || self.fired >= self.times
        {
            return false;
        }
        self.fired += 1;
        true
    }
}

/// One request as the proxy saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query, percent-decoded.
    pub target: String,
    /// The fault it got, if any.
    pub fault: Option<String>,
    /// The body, as text (form-encoded for STS and SQS calls).
    pub body: String,
    /// The access key id that signed it (not a secret: it names the credentials).
    pub access_key: String,
    /// The credential scope of its signature (`DATE/REGION/s3/aws4_request`).
    scope: String,
}

impl Request {
    pub fn is_list(&self) -> bool {
        self.target.contains("list-type=")
    }
    /// The service its signature is for (`s3`, `sts`, `sqs`), from the credential scope.
    pub fn service(&self) -> &str {
        self.scope.split('/').nth(2).unwrap_or("")
    }
    fn signed_for(&self, region: &str) -> bool {
        self.scope.contains(&format!("/{region}/s3/"))
    }
}

/// A running proxy; it lives until the test process exits.
pub struct Proxy {
    pub endpoint: String,
    rules: Arc<Mutex<Vec<Rule>>>,
    log: Arc<Mutex<Vec<Request>>>,
}

impl Proxy {
    /// Starts a proxy in front of `upstream` (`http://host:port`).
    pub fn start(upstream: &str) -> Proxy {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .parse()
            .expect("the upstream is http://IP:PORT");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let rules = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (thread_rules, thread_log) = (rules.clone(), log.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (rules, log) = (thread_rules.clone(), thread_log.clone());
                std::thread::spawn(move || serve(client, upstream, &rules, &log));
            }
        });
        Proxy {
            endpoint,
            rules,
            log,
        }
    }

    pub fn add(&self, rule: Rule) -> &Proxy {
        self.rules.lock().unwrap().push(rule);
        self
    }

    /// Removes every rule: from now on, everything passes.
    pub fn heal(&self) {
        self.rules.lock().unwrap().clear();
    }

    /// The requests seen so far (and forgets them).
    pub fn take_log(&self) -> Vec<Request> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }

    /// How many requests got a fault so far (the log is left as it is).
    pub fn faults(&self) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.fault.is_some())
            .count()
    }
}

fn serve(
    client: TcpStream,
    upstream: SocketAddr,
    rules: &Mutex<Vec<Rule>>,
    log: &Mutex<Vec<Request>>,
) {
    let mut writer = client.try_clone().unwrap();
    let mut reader = BufReader::new(client);
    while let Some((head, body, mut request)) = read_request(&mut reader) {
        let fault = rules
            .lock()
            .unwrap()
            .iter_mut()
            .find_map(|rule| rule.hits(&request).then(|| rule.fault.clone()));
        request.fault = fault.as_ref().map(|f| format!("{f:?}"));
        log.lock().unwrap().push(request);
        let sent = match fault {
            None => forward(&head, &body, upstream).and_then(|r| writer.write_all(&r).ok()),
            Some(Fault::Delay(pause)) => {
                std::thread::sleep(pause);
                forward(&head, &body, upstream).and_then(|r| writer.write_all(&r).ok())
            }
            Some(Fault::SlowDown) => error(
                &mut writer,
                503,
                "SlowDown",
                "Please reduce your request rate.",
                "",
            ),
            Some(Fault::InternalError) => error(
                &mut writer,
                500,
                "InternalError",
                "We encountered an internal error. Please try again.",
                "",
            ),
            Some(Fault::KmsDenied) => error(
                &mut writer,
                403,
                "AccessDenied",
                "The ciphertext refers to a customer master key that does not exist, does not \
                 exist in this region, or you are not allowed to access.",
                "",
            ),
            Some(Fault::WrongRegion(region)) => error(
                &mut writer,
                301,
                "PermanentRedirect",
                "The bucket you are attempting to access must be addressed using the specified \
                 endpoint.",
                &format!("x-amz-bucket-region: {region}\r\n"),
            ),
            Some(Fault::Error(status, code, message)) => {
                error(&mut writer, status, code, message, "")
            }
            Some(Fault::QueryError(status, code, message)) => {
                query_error(&mut writer, status, code, message)
            }
            Some(Fault::Json(body)) => {
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\n\
                     Content-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                writer.write_all(response.as_bytes()).ok()
            }
            Some(Fault::Reset) => None,
            Some(Fault::CutBody(keep)) => {
                if let Some(response) = forward(&head, &body, upstream) {
                    let body_start = header_end(&response).unwrap_or(response.len());
                    let end = (body_start + keep).min(response.len());
                    let _ = writer.write_all(&response[..end]);
                }
                None
            }
        };
        if sent.is_none() {
            let _ = writer.shutdown(Shutdown::Both);
            return;
        }
    }
}

/// Reads one request: its head (request line and headers, as sent), body and description.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(Vec<u8>, Vec<u8>, Request)> {
    let mut head = Vec::new();
    let mut content_length = 0usize;
    let mut scope = String::new();
    let mut access_key = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            content_length = v.trim().parse().ok()?;
        }
        if lower.starts_with("authorization:") {
            // Only the scope: the rest is no business of a test log.
            let credential = line
                .split("Credential=")
                .nth(1)
                .and_then(|c| c.split_once('/'));
            scope = credential
                .map(|(_, rest)| rest.split(',').next().unwrap_or("").to_owned())
                .unwrap_or_default();
            access_key = credential
                .map(|(key, _)| key.to_owned())
                .unwrap_or_default();
        }
        // The upstream connection serves this one request only.
        if !lower.starts_with("connection:") {
            head.extend_from_slice(line.as_bytes());
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
    }
    let mut body = vec![0; content_length];
    reader.read_exact(&mut body).ok()?;
    let first =
        String::from_utf8_lossy(&head[..head.iter().position(|&b| b == b'\n')?]).into_owned();
    let mut parts = first.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = percent_decode(parts.next()?);
    // Put `Connection: close` back just before the blank line.
    let blank = head.len() - if head.ends_with(b"\r\n\r\n") { 2 } else { 1 };
    head.splice(blank..blank, b"Connection: close\r\n".iter().copied());
    let body_text = String::from_utf8_lossy(&body).into_owned();
    Some((
        head,
        body,
        Request {
            method,
            target,
            fault: None,
            body: body_text,
            access_key,
            scope,
        },
    ))
}

/// Sends one request upstream and returns the whole response, made self-delimiting so that the
/// client connection can be kept alive.
pub(crate) fn forward(head: &[u8], body: &[u8], upstream: SocketAddr) -> Option<Vec<u8>> {
    let mut server = TcpStream::connect(upstream).ok()?;
    server.write_all(head).ok()?;
    server.write_all(body).ok()?;
    let mut response = Vec::new();
    server.read_to_end(&mut response).ok()?;
    let end = header_end(&response)?;
    let headers = String::from_utf8_lossy(&response[..end]).to_ascii_lowercase();
    if !headers.contains("\ncontent-length:") && !headers.contains("\ntransfer-encoding:") {
        let length = format!("Content-Length: {}\r\n", response.len() - end);
        response.splice(end - 2..end - 2, length.bytes());
    }
    Some(response)
}

/// The offset just after the blank line ending a response's headers.
pub(crate) fn header_end(response: &[u8]) -> Option<usize> {
    response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
}

fn error(
    writer: &mut TcpStream,
    status: u16,
    code: &str,
    message: &str,
    extra_headers: &str,
) -> Option<()> {
    let reason = match status {
        301 => "Moved Permanently",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        _ => "Service Unavailable",
    };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
         <Message>{message}</Message><RequestId>FAULTPROXY</RequestId></Error>"
    );
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\n{extra_headers}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    writer.write_all(response.as_bytes()).ok()
}

/// An error as STS (and the other query-protocol services) words it.
fn query_error(writer: &mut TcpStream, status: u16, code: &str, message: &str) -> Option<()> {
    let body = format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error>\
         <Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>\
         <RequestId>FAULTPROXY</RequestId></ErrorResponse>"
    );
    let response = format!(
        "HTTP/1.1 {status} Forbidden\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    writer.write_all(response.as_bytes()).ok()
}

pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap() * 16 + hex(l).unwrap()) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
