//! fast-s3: the benchmark's S3 server, and a plain GET loop to show its ceiling.
//!
//!   fast-s3 serve ROOT [--addr 127.0.0.1:0] [--delay-ms N] [--threads N] [--fs-list] [--fs-get]
//!       Serves ROOT/BUCKET/KEY over HTTP/1.1 (keep-alive, TCP_NODELAY on every accepted
//!       socket), SigV4 with the test credentials (test/test). `--delay-ms` holds every request
//!       that long before answering it: a latency proxy (30 ms is about S3 in its region).
//!       Prints `listening on http://ADDR` once ready. `GET /__bench/stats` answers the
//!       request counts so far as one JSON line (not counted itself). `--fs-list`, `--fs-get`:
//!       s3s-fs's own ListObjectsV2 or GetObject instead of the in-memory ones (see store.rs).
//!   fast-s3 get-loop --endpoint URL --bucket B --keys FILE [--connections N]
//!       GETs every key of FILE (one a line) with the AWS SDK, set up as the collector sets it
//!       up, N requests in flight; prints one JSON line: objects, bytes, seconds.

mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;

fn usage() -> ! {
    eprintln!(
        "usage: fast-s3 serve ROOT [--addr HOST:PORT] [--delay-ms N] [--threads N] [--fs-list] [--fs-get]\n       \
         fast-s3 get-loop --endpoint URL --bucket B --keys FILE [--connections N] [--threads N]"
    );
    std::process::exit(2)
}

struct Args(Vec<String>);

impl Args {
    fn flag(&mut self, name: &str) -> bool {
        match self.0.iter().position(|a| a == name) {
            Some(i) => {
                self.0.remove(i);
                true
            }
            None => false,
        }
    }
    fn value(&mut self, name: &str) -> Option<String> {
        let i = self.0.iter().position(|a| a == name)?;
        if i + 1 >= self.0.len() {
            usage();
        }
        let v = self.0.remove(i + 1);
        self.0.remove(i);
        Some(v)
    }
    fn number(&mut self, name: &str, default: u64) -> u64 {
        self.value(name)
            .map(|v| v.parse().unwrap_or_else(|_| usage()))
            .unwrap_or(default)
    }
}

fn runtime(threads: u64) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1) as usize)
        .enable_all()
        .build()
        .expect("a runtime")
}

fn main() {
    let mut args = Args(std::env::args().skip(1).collect());
    if args.0.is_empty() {
        usage();
    }
    let command = args.0.remove(0);
    let threads = args.number("--threads", 2);
    match command.as_str() {
        "serve" => {
            let addr: SocketAddr = args
                .value("--addr")
                .unwrap_or_else(|| "127.0.0.1:0".to_owned())
                .parse()
                .unwrap_or_else(|_| usage());
            let delay = Duration::from_millis(args.number("--delay-ms", 0));
            let fs_list = args.flag("--fs-list");
            let fs_get = args.flag("--fs-get");
            let [root] = <[String; 1]>::try_from(args.0).unwrap_or_else(|_| usage());
            runtime(threads).block_on(serve(PathBuf::from(root), addr, delay, fs_list, fs_get));
        }
        "get-loop" => {
            let endpoint = args.value("--endpoint").unwrap_or_else(|| usage());
            let bucket = args.value("--bucket").unwrap_or_else(|| usage());
            let keys = args.value("--keys").unwrap_or_else(|| usage());
            let connections = args.number("--connections", 16) as usize;
            if !args.0.is_empty() {
                usage();
            }
            let keys: Vec<String> = std::fs::read_to_string(&keys)
                .expect("reading the key list")
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect();
            runtime(threads).block_on(get_loop(endpoint, bucket, keys, connections));
        }
        _ => usage(),
    }
}

#[derive(Default)]
struct Counts {
    list: AtomicU64,
    get: AtomicU64,
    head: AtomicU64,
    other: AtomicU64,
}

impl Counts {
    fn json(&self) -> String {
        let [l, g, h, o] =
            [&self.list, &self.get, &self.head, &self.other].map(|c| c.load(Ordering::Relaxed));
        format!(
            r#"{{"requests":{},"list":{l},"get":{g},"head":{h},"other":{o}}}"#,
            l + g + h + o
        )
    }
}

async fn serve(root: PathBuf, addr: SocketAddr, delay: Duration, fs_list: bool, fs_get: bool) {
    let started = Instant::now();
    let store = store::Store::load(&root, fs_list, fs_get).expect("reading ROOT");
    eprintln!(
        "fast-s3: {} ({:.1} s to load)",
        store.summary(),
        started.elapsed().as_secs_f64()
    );
    let s3 = {
        let mut b = S3ServiceBuilder::new(store);
        b.set_auth(SimpleAuth::from_single("test", "test"));
        b.build()
    };
    let counts = Arc::new(Counts::default());
    let listener = TcpListener::bind(addr).await.expect("binding the address");
    println!(
        "listening on http://{}",
        listener.local_addr().expect("an address")
    );
    let http = ConnBuilder::new(TokioExecutor::new());
    loop {
        let (socket, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("fast-s3: accept: {e}");
                continue;
            }
        };
        // Without it, a response written in two segments waits on the client's delayed ACK.
        socket.set_nodelay(true).expect("TCP_NODELAY");
        let s3 = s3.clone();
        let counts = counts.clone();
        let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
            let s3 = s3.clone();
            let counts = counts.clone();
            async move {
                if req.uri().path() == "/__bench/stats" {
                    let body = s3s::Body::from(Bytes::from(counts.json()));
                    return Ok(http::Response::new(body));
                }
                let counter = match *req.method() {
                    http::Method::GET
                        if req.uri().query().is_some_and(|q| q.contains("list-type=2")) =>
                    {
                        &counts.list
                    }
                    http::Method::GET => &counts.get,
                    http::Method::HEAD => &counts.head,
                    _ => &counts.other,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                s3.call(req.map(s3s::Body::from)).await
            }
        });
        let http = http.clone();
        tokio::spawn(async move {
            let _ = http.serve_connection(TokioIo::new(socket), service).await;
        });
    }
}

async fn get_loop(endpoint: String, bucket: String, keys: Vec<String>, connections: usize) {
    use aws_config::BehaviorVersion;
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let shared = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .endpoint_url(&endpoint)
        .load()
        .await;
    let config = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(true)
        .build();
    let client = aws_sdk_s3::Client::from_conf(config);
    let keys = Arc::new(keys);
    let next = Arc::new(AtomicUsize::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..connections.max(1))
        .map(|_| {
            let (client, bucket, keys, next, bytes) = (
                client.clone(),
                bucket.clone(),
                keys.clone(),
                next.clone(),
                bytes.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(key) = keys.get(i) else { return };
                    let out = client.get_object().bucket(&bucket).key(key).send().await;
                    let body = out.unwrap_or_else(|e| panic!("GET {key}: {e:?}")).body;
                    let data = body
                        .collect()
                        .await
                        .unwrap_or_else(|e| panic!("GET {key}: {e}"));
                    bytes.fetch_add(data.into_bytes().len() as u64, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for w in workers {
        w.await.expect("a GET worker panicked");
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        r#"{{"objects":{},"bytes":{},"seconds":{seconds:.3},"connections":{connections}}}"#,
        keys.len(),
        bytes.load(Ordering::Relaxed)
    );
}
