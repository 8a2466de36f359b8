//! `bench-proxy`: an HTTP/1.1 reverse proxy that the end-to-end benchmark (`benches/transfer.sh`)
//! puts between a client and a local MLflow tracking server, for two reasons:
//!
//! 1. **Counting.** It counts the requests, client connections and body bytes going through it, so
//!    the benchmark can report "requests sent" for clients it does not instrument (mlflow-archive,
//!    a raw floor client, the Python mlflow-export-import). `GET /__proxy/stats` (answered by the
//!    proxy itself: not forwarded, not counted, not delayed) returns the totals since start:
//!
//!        {"requests": N, "connections": C, "bytes_up": U, "bytes_down": W,
//!         "at_server": A, "busy_ms": B1, "busy2_ms": B2, "request_ms": R}
//!
//!    `requests`: requests forwarded upstream; `connections`: client connections that carried at
//!    least one forwarded request (so the connection a stats read arrives on does not count);
//!    `bytes_up`: request body bytes forwarded upstream; `bytes_down`: response body bytes returned
//!    to clients. The script reads it before and after each job and takes the differences.
//!
//!    The last four say how busy the client kept the server. A request is *at the server* from
//!    the moment it is sent upstream until its response head comes back (the proxy's own delays
//!    are outside it): `at_server` is how many are now; `busy_ms` the milliseconds during which at
//!    least one was, `busy2_ms` at least two (the servers run two workers), `request_ms` the sum
//!    of every request's time there (divided by a job's wall: the mean number at the server).
//!    With `--timeline PATH`, the proxy appends a line to PATH every 250 ms: the Unix time in
//!    milliseconds, then `requests`, `at_server`, `busy_ms`, `busy2_ms` and `request_ms`,
//!    tab-separated, so a job's phases can be read afterwards.
//!
//! 2. **Latency.** With `--delay-ms D` it emulates a network path with a one-way delay of D (a
//!    migration across regions): a request is forwarded D after it arrived (client → server), and
//!    a response head is returned D after it arrived from upstream (server → client). The first
//!    request on a new client connection is forwarded no earlier than 3·D after the connection was
//!    accepted: the TCP handshake (one round trip, 2·D) a real client pays before it can send, then
//!    the one-way trip. A fresh connection's first request thus costs 4·D more than a direct one,
//!    a kept-alive connection's 2·D. The sleeps are asynchronous, so concurrent requests overlap
//!    their delays; body bytes are not throttled (bandwidth is not limited).
//!
//! ```text
//! bench-proxy --upstream 127.0.0.1:PORT [--delay-ms D] [--port-file PATH] [--timeline PATH]
//! ```
//!
//! It listens on a free loopback port, writes that port (digits and a newline) to `PATH`
//! atomically (`PATH.tmp`, then a rename) once it is listening, prints `listening on
//! 127.0.0.1:PORT` to stderr, and runs until killed. The script points a client at
//! `http://127.0.0.1:PORT`; the Host header is forwarded as received (the servers are started with
//! `--allowed-hosts '127.0.0.1:*,...'`, which accepts the proxy's address).
//!
//! Bodies stream in both directions (1 GiB artifacts go through it; memory stays at hyper's
//! buffers), client connections are kept alive and served concurrently, upstream connections are
//! pooled and kept alive (no connect cost per request). Hop-by-hop headers are not forwarded; a
//! request body keeps its framing (Content-Length or chunked). An upstream failure is a 502 with a
//! one-line text body and a one-line log on stderr; nothing is logged per request.

use std::convert::Infallible;
use std::error::Error;
use std::fmt::Write as _;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::{Either, Full};
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::http::uri::{Authority, PathAndQuery, Scheme};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::time::{Instant, sleep, sleep_until};

const USAGE: &str =
    "usage: bench-proxy --upstream HOST:PORT [--delay-ms D] [--port-file PATH] [--timeline PATH]";
const STATS_PATH: &str = "/__proxy/stats";

/// Upstream connections idle for longer than this are dropped rather than reused: uvicorn closes
/// kept-alive connections after 5 s idle, and a request sent just as it does would fail.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(2);

/// Totals since start (see the module documentation).
struct Stats {
    requests: AtomicU64,
    connections: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
}

static STATS: Stats = Stats {
    requests: AtomicU64::new(0),
    connections: AtomicU64::new(0),
    bytes_up: AtomicU64::new(0),
    bytes_down: AtomicU64::new(0),
};

/// How many requests are at the server, and the time integrals of that number (see the module
/// documentation).
struct Occupancy {
    now: u64,
    since: std::time::Instant,
    busy: Duration,
    busy2: Duration,
    request: Duration,
}

static OCCUPANCY: Mutex<Option<Occupancy>> = Mutex::new(None);

/// Runs `f` on the occupancy brought up to this instant.
fn occupancy<T>(f: impl FnOnce(&mut Occupancy) -> T) -> T {
    let mut guard = OCCUPANCY.lock().unwrap_or_else(|e| e.into_inner());
    let now = std::time::Instant::now();
    let o = guard.get_or_insert_with(|| Occupancy {
        now: 0,
        since: now,
        busy: Duration::ZERO,
        busy2: Duration::ZERO,
        request: Duration::ZERO,
    });
    let dt = now - o.since;
    if o.now >= 1 {
        o.busy += dt;
    }
    if o.now >= 2 {
        o.busy2 += dt;
    }
    o.request += dt * u32::try_from(o.now).unwrap_or(u32::MAX);
    o.since = now;
    f(o)
}

/// A request at the server while this lives.
struct AtServer;

impl AtServer {
    fn enter() -> Self {
        occupancy(|o| o.now += 1);
        AtServer
    }
}

impl Drop for AtServer {
    fn drop(&mut self) {
        occupancy(|o| o.now = o.now.saturating_sub(1));
    }
}

/// The request body as forwarded upstream (`Counted<Incoming>`), the response body returned to the
/// client: the upstream's, counted, or one of the proxy's own (stats, 502).
type UpstreamBody = Counted<Incoming>;
type ClientBody = Either<Counted<Incoming>, Full<Bytes>>;

/// What every connection's handler needs; lives for the whole process.
struct Proxy {
    client: Client<HttpConnector, UpstreamBody>,
    upstream: Authority,
    /// The one-way delay D (zero: no sleeping at all).
    delay: Duration,
}

/// A body passed through unchanged, adding the length of every data frame to a counter as it goes.
/// It keeps the inner body's size hint, so a Content-Length body is forwarded with its length.
struct Counted<B> {
    inner: B,
    counter: &'static AtomicU64,
}

impl<B: Body<Data = Bytes> + Unpin> Body for Counted<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let poll = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &poll
            && let Some(data) = frame.data_ref()
        {
            self.counter.fetch_add(data.len() as u64, Relaxed);
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Serves one request from a client connection. `first`: it is the connection's first forwarded
/// request; `accepted`: when the connection was accepted.
async fn handle(
    proxy: &'static Proxy,
    first: &AtomicBool,
    accepted: Instant,
    req: Request<Incoming>,
) -> Result<Response<ClientBody>, Infallible> {
    if req.method() == Method::GET && req.uri().path() == STATS_PATH {
        return Ok(stats());
    }
    STATS.requests.fetch_add(1, Relaxed);
    // (hyper serves a connection's requests one at a time: no race on `first`.)
    let fresh = first.swap(false, Relaxed);
    if fresh {
        STATS.connections.fetch_add(1, Relaxed);
    }
    if !proxy.delay.is_zero() {
        // Client → server: D, and on a new connection no earlier than the handshake's end (2·D
        // after the accept) + D.
        let mut send_at = Instant::now();
        if fresh {
            send_at = send_at.max(accepted + 2 * proxy.delay);
        }
        sleep_until(send_at + proxy.delay).await;
    }

    let (mut parts, body) = req.into_parts();
    let chunked = is_chunked(&parts.headers);
    remove_hop_by_hop(&mut parts.headers);
    // hyper's server has already answered `Expect: 100-continue` (it sends the 100 when the body
    // is first read, i.e. when the upstream request starts): the expectation is not passed on.
    parts.headers.remove(header::EXPECT);
    if chunked {
        // Keep the framing (hyper would send a chunked GET as bodiless).
        parts.headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
    }
    let mut uri = Uri::builder()
        .scheme(Scheme::HTTP)
        .authority(proxy.upstream.clone());
    if let Some(pq) = parts.uri.path_and_query() {
        uri = uri.path_and_query(pq.clone());
    } else {
        uri = uri.path_and_query(PathAndQuery::from_static("/"));
    }
    parts.uri = match uri.build() {
        Ok(uri) => uri,
        Err(e) => return Ok(bad_gateway("bad request target", &e)),
    };
    // Upstream connections are always HTTP/1.1, kept alive, whatever the client speaks.
    parts.version = Version::HTTP_11;
    let body = Counted {
        inner: body,
        counter: &STATS.bytes_up,
    };

    let at_server = AtServer::enter();
    let response = match proxy.client.request(Request::from_parts(parts, body)).await {
        Ok(response) => response,
        Err(e) => return Ok(bad_gateway("upstream request failed", &e)),
    };
    drop(at_server);
    if !proxy.delay.is_zero() {
        // Server → client: D.
        sleep(proxy.delay).await;
    }
    let (mut parts, body) = response.into_parts();
    remove_hop_by_hop(&mut parts.headers);
    let body = Counted {
        inner: body,
        counter: &STATS.bytes_down,
    };
    Ok(Response::from_parts(parts, Either::Left(body)))
}

/// Whether the message body is chunked (Transfer-Encoding ends in `chunked`).
fn is_chunked(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .next_back()
        .is_some_and(|v| {
            v.to_str().is_ok_and(|v| {
                v.rsplit(',')
                    .next()
                    .is_some_and(|t| t.trim().eq_ignore_ascii_case("chunked"))
            })
        })
}

/// Removes the hop-by-hop headers (RFC 9110 §7.6.1): those named in Connection, the fixed set,
/// and any `Proxy-*`. hyper frames each hop's body and manages each hop's connection itself.
fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    if headers.keys().any(|k| k.as_str().starts_with("proxy-")) {
        let proxy: Vec<HeaderName> = headers
            .keys()
            .filter(|k| k.as_str().starts_with("proxy-"))
            .cloned()
            .collect();
        for name in proxy {
            headers.remove(name);
        }
    }
}

/// The `GET /__proxy/stats` response.
fn stats() -> Response<ClientBody> {
    let (at_server, busy, busy2, request) =
        occupancy(|o| (o.now, ms(o.busy), ms(o.busy2), ms(o.request)));
    let json = format!(
        "{{\"requests\": {}, \"connections\": {}, \"bytes_up\": {}, \"bytes_down\": {}, \
         \"at_server\": {at_server}, \"busy_ms\": {busy}, \"busy2_ms\": {busy2}, \
         \"request_ms\": {request}}}\n",
        STATS.requests.load(Relaxed),
        STATS.connections.load(Relaxed),
        STATS.bytes_up.load(Relaxed),
        STATS.bytes_down.load(Relaxed),
    );
    let mut response = Response::new(Either::Right(Full::new(Bytes::from(json))));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// Appends a line to `path` every 250 ms (see the module documentation), until the process ends.
async fn timeline(path: String) {
    use std::io::Write as _;
    let mut file = match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) => {
            eprintln!("bench-proxy: --timeline {path}: {e}");
            return;
        }
    };
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let (at_server, busy, busy2, request) =
            occupancy(|o| (o.now, ms(o.busy), ms(o.busy2), ms(o.request)));
        let line = format!(
            "{unix}\t{}\t{at_server}\t{busy}\t{busy2}\t{request}\n",
            STATS.requests.load(Relaxed)
        );
        if let Err(e) = file.write_all(line.as_bytes()) {
            eprintln!("bench-proxy: --timeline {path}: {e}");
            return;
        }
    }
}

/// Logs one line and returns a 502 with a short text body.
fn bad_gateway(what: &str, error: &dyn Error) -> Response<ClientBody> {
    let mut line = format!("{what}: {}", describe(error));
    eprintln!("bench-proxy: {line}");
    line.push('\n');
    let mut response = Response::new(Either::Right(Full::new(Bytes::from(line))));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// An error and its sources, on one line (hyper's own messages are terse).
fn describe(error: &dyn Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let _ = write!(line, ": {e}");
        source = e.source();
    }
    line
}

struct Args {
    upstream: Authority,
    delay: Duration,
    port_file: Option<String>,
    timeline: Option<String>,
}

fn parse_args() -> Args {
    let usage = |problem: &str| -> ! {
        eprintln!("bench-proxy: {problem}\n{USAGE}");
        std::process::exit(2)
    };
    let (mut upstream, mut delay, mut port_file, mut timeline) = (None, Duration::ZERO, None, None);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--upstream" => {
                // Also accepts a URI (`http://127.0.0.1:PORT/`), as the scripts hold them.
                let v = value();
                let v = v
                    .strip_prefix("http://")
                    .unwrap_or(&v)
                    .trim_end_matches('/');
                upstream = Some(
                    v.parse::<Authority>()
                        .unwrap_or_else(|e| usage(&format!("--upstream {v}: {e}"))),
                );
            }
            "--delay-ms" => {
                let v = value();
                let ms: u64 = v
                    .parse()
                    .unwrap_or_else(|e| usage(&format!("--delay-ms {v}: {e}")));
                delay = Duration::from_millis(ms);
            }
            "--port-file" => port_file = Some(value()),
            "--timeline" => timeline = Some(value()),
            "-h" | "--help" => {
                eprintln!("{USAGE}");
                std::process::exit(0)
            }
            _ => usage(&format!("unknown argument {flag}")),
        }
    }
    let upstream = upstream.unwrap_or_else(|| usage("--upstream is required"));
    Args {
        upstream,
        delay,
        port_file,
        timeline,
    }
}

fn main() {
    let args = parse_args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(serve(args));
}

async fn serve(args: Args) {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_timer(TokioTimer::new())
        .build(connector);
    // Every connection task borrows it for the life of the process.
    let proxy: &'static Proxy = Box::leak(Box::new(Proxy {
        client,
        upstream: args.upstream,
        delay: args.delay,
    }));

    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local address").port();
    if let Some(path) = &args.port_file {
        let tmp = format!("{path}.tmp");
        std::fs::write(&tmp, format!("{port}\n")).expect("write the port file");
        std::fs::rename(&tmp, path).expect("rename the port file");
    }
    eprintln!("listening on 127.0.0.1:{port}");
    if let Some(path) = args.timeline {
        tokio::spawn(timeline(path));
    }

    let server = http1::Builder::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // E.g. out of file descriptors: wait for some to close rather than spin.
                eprintln!("bench-proxy: accept: {e}");
                sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let accepted = Instant::now();
        // Small requests and response heads go out at once (no Nagle delay).
        if let Err(e) = stream.set_nodelay(true) {
            eprintln!("bench-proxy: set_nodelay: {e}");
        }
        let server = server.clone();
        tokio::spawn(async move {
            let first = AtomicBool::new(true);
            let service = service_fn(|req| handle(proxy, &first, accepted, req));
            if let Err(e) = server.serve_connection(TokioIo::new(stream), service).await {
                eprintln!("bench-proxy: client connection: {}", describe(&e));
            }
        });
    }
}
