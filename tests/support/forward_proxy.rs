//! A small HTTP forward proxy on 127.0.0.1, as a data centre's proxy is to the collector: an
//! http:// request comes with its absolute URI (`GET http://host:port/path HTTP/1.1`) and is
//! sent on to that host; an https:// one opens a `CONNECT host:port` tunnel, through which the
//! bytes go both ways untouched. It logs each request (method, target, the
//! `Proxy-Authorization` it carried), so tests can count what went through it, and can demand
//! credentials (407 without them).
//!
//! One thread per client connection, keep-alive towards the client, one upstream connection
//! per forwarded request (`Connection: close`), as in the fault proxy.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};

use super::proxy::forward;

/// One request as the proxy saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `CONNECT`, or the method of a forwarded request.
    pub method: String,
    /// `host:port` for CONNECT, the absolute URI otherwise.
    pub target: String,
    /// The `Proxy-Authorization` header, if any.
    pub authorization: Option<String>,
    /// What the proxy answered itself, if it did not pass the request on (407, 502).
    pub refused: Option<u16>,
}

/// A running proxy; it lives until the test process exits.
pub struct ForwardProxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// `127.0.0.1:PORT`.
    pub address: String,
    log: Arc<Mutex<Vec<Seen>>>,
}

impl ForwardProxy {
    /// A proxy that lets everyone through.
    pub fn start() -> ForwardProxy {
        ForwardProxy::start_with(None)
    }

    /// A proxy that answers 407 to requests without `user:password` (Basic).
    pub fn with_credentials(user: &str, password: &str) -> ForwardProxy {
        ForwardProxy::start_with(Some(format!(
            "Basic {}",
            base64(&format!("{user}:{password}"))
        )))
    }

    fn start_with(required: Option<String>) -> ForwardProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let log = Arc::new(Mutex::new(Vec::new()));
        let thread_log = log.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (log, required) = (thread_log.clone(), required.clone());
                std::thread::spawn(move || serve(client, required.as_deref(), &log));
            }
        });
        ForwardProxy {
            url: format!("http://{address}"),
            address,
            log,
        }
    }

    /// The requests seen so far (and forgets them).
    pub fn take_log(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }
}

fn serve(client: TcpStream, required: Option<&str>, log: &Mutex<Vec<Seen>>) {
    let mut writer = client.try_clone().unwrap();
    let mut reader = BufReader::new(client);
    loop {
        let Some((method, target, mut headers)) = read_head(&mut reader) else {
            return;
        };
        let authorization = take_header(&mut headers, "proxy-authorization");
        take_header(&mut headers, "proxy-connection");
        let mut seen = Seen {
            method: method.clone(),
            target: target.clone(),
            authorization: authorization.clone(),
            refused: None,
        };
        let content_length: usize = headers
            .iter()
            .find_map(|h| {
                let (name, value) = h.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or(0);
        let mut body = vec![0; content_length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if required.is_some() && authorization.as_deref() != required {
            seen.refused = Some(407);
            log.lock().unwrap().push(seen);
            let _ = writer.write_all(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                  Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n",
            );
            continue;
        }
        if method == "CONNECT" {
            let upstream = target
                .to_socket_addrs()
                .ok()
                .and_then(|mut addrs| addrs.next())
                .and_then(|addr| TcpStream::connect(addr).ok());
            let Some(upstream) = upstream else {
                seen.refused = Some(502);
                log.lock().unwrap().push(seen);
                let _ = writer.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
                return;
            };
            log.lock().unwrap().push(seen);
            if writer
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .is_err()
            {
                return;
            }
            // Whatever the client already sent past the CONNECT head goes first.
            let early = reader.buffer().to_vec();
            tunnel(reader.into_inner(), writer, upstream, &early);
            return;
        }
        // An http:// request: its absolute URI tells where to send it.
        let Some((host, path)) = target
            .strip_prefix("http://")
            .map(|rest| rest.split_at(rest.find('/').unwrap_or(rest.len())))
        else {
            seen.refused = Some(400);
            log.lock().unwrap().push(seen);
            let _ = writer.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
            return;
        };
        let path = if path.is_empty() { "/" } else { path };
        let Some(upstream) = host.to_socket_addrs().ok().and_then(|mut a| a.next()) else {
            seen.refused = Some(502);
            log.lock().unwrap().push(seen);
            let _ = writer.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
            return;
        };
        log.lock().unwrap().push(seen);
        let mut head = format!("{method} {path} HTTP/1.1\r\n");
        for header in headers
            .iter()
            .filter(|h| !h.to_ascii_lowercase().starts_with("connection:"))
        {
            head.push_str(header);
            head.push_str("\r\n");
        }
        head.push_str("Connection: close\r\n\r\n");
        match forward(head.as_bytes(), &body, upstream) {
            Some(response) if writer.write_all(&response).is_ok() => {}
            _ => {
                let _ = writer.shutdown(Shutdown::Both);
                return;
            }
        }
    }
}

/// The request line's method and target, and the header lines (without their line ends).
fn read_head(reader: &mut BufReader<TcpStream>) -> Option<(String, String, Vec<String>)> {
    let mut first = String::new();
    if reader.read_line(&mut first).ok()? == 0 {
        return None;
    }
    let mut parts = first.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            return Some((method, target, headers));
        }
        headers.push(line.to_owned());
    }
}

/// Removes the header `name` (lowercase) and returns its value.
fn take_header(headers: &mut Vec<String>, name: &str) -> Option<String> {
    let index = headers.iter().position(|h| {
        h.split_once(':')
            .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name))
    })?;
    let header = headers.remove(index);
    header.split_once(':').map(|(_, v)| v.trim().to_owned())
}

/// Copies bytes both ways until either side closes.
fn tunnel(client: TcpStream, mut client_writer: TcpStream, upstream: TcpStream, early: &[u8]) {
    let mut upstream_writer = upstream.try_clone().unwrap();
    if upstream_writer.write_all(early).is_err() {
        return;
    }
    let mut client_reader = client;
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_reader, &mut upstream_writer);
        let _ = upstream_writer.shutdown(Shutdown::Write);
    });
    let mut upstream_reader = upstream;
    let _ = std::io::copy(&mut upstream_reader, &mut client_writer);
    let _ = client_writer.shutdown(Shutdown::Both);
    let _ = up.join();
}

fn base64(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `base64` for tests that look for an encoded password in the output.
pub fn basic(user: &str, password: &str) -> String {
    base64(&format!("{user}:{password}"))
}
