//! A loopback HTTP/1.1 proxy that injects faults in front of a real server.
//!
//! It serves one request per connection (it answers with `Connection: close`) and takes the next
//! [`Fault`] from its script for each request (when the script is empty: [`Fault::Pass`]). It
//! records every request head it sees, so tests can count requests and read headers.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does with one request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Forward it and relay the answer.
    Pass,
    /// Close the connection without forwarding (the server never sees the request).
    DropBeforeForward,
    /// Forward it, let the server act, then close the connection without answering.
    DropAfterForward,
    /// Answer with this status (and `Retry-After` seconds), without forwarding.
    Status(u16, Option<u32>),
    /// Answer with this status, content type and body, without forwarding.
    Reply(u16, &'static str, &'static str),
    /// Forward it, relay the answer's head and this fraction (0 to 1) of its body, then close the
    /// connection: an answer cut in its middle, after the server acted.
    CutBody(f64),
    /// Forward it, relay the head and this fraction of the body, then send nothing for this long
    /// before closing: a server (or proxy) that stalls in the middle of an answer.
    StallBody(f64, std::time::Duration),
    /// Forward it without its `Range` header (a server that ignores ranges) and relay the answer.
    PassWithoutRange,
}

/// Random faults for requests the script and routes leave alone: a seeded generator, and the
/// probability of each fault.
#[derive(Debug, Clone)]
pub struct Chaos {
    /// The generator's state (any non-zero seed).
    pub state: u64,
    /// Cut the answer's body at a random offset.
    pub cut: f64,
    /// Stall the answer's body at a random offset for `stall_for`.
    pub stall: f64,
    /// How long a stall lasts.
    pub stall_for: std::time::Duration,
    /// Answer 503 without forwarding.
    pub unavailable: f64,
}

impl Chaos {
    fn unit(&mut self) -> f64 {
        // xorshift64*
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn draw(&mut self) -> Fault {
        let r = self.unit();
        let at = self.unit();
        if r < self.cut {
            Fault::CutBody(at)
        } else if r < self.cut + self.stall {
            Fault::StallBody(at, self.stall_for)
        } else if r < self.cut + self.stall + self.unavailable {
            Fault::Status(503, None)
        } else {
            Fault::Pass
        }
    }
}

/// A running proxy.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`.
    pub uri: String,
    script: Arc<Mutex<VecDeque<Fault>>>,
    routes: Routes,
    seen: Arc<Mutex<Vec<String>>>,
    chaos: Arc<Mutex<Option<Chaos>>>,
    faults: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

/// Marks a route that applies once, to a request line containing the rest of its key.
const ONCE: &str = "\u{0}once:";

/// Standing answers by path prefix, before the script is consulted.
type Routes = Arc<Mutex<Vec<(String, Fault)>>>;

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Starts a proxy for `upstream` (`http://host:port`) on the current tokio runtime.
    pub async fn start(upstream: &str) -> FaultProxy {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        let script = Arc::new(Mutex::new(VecDeque::new()));
        let routes: Routes = Arc::default();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let chaos: Arc<Mutex<Option<Chaos>>> = Arc::default();
        let faults: Arc<Mutex<Vec<String>>> = Arc::default();
        let shared = Shared {
            script: script.clone(),
            routes: routes.clone(),
            seen: seen.clone(),
            chaos: chaos.clone(),
            faults: faults.clone(),
        };
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let (shared, upstream) = (shared.clone(), upstream.clone());
                tokio::spawn(async move {
                    let _ = serve(conn, &upstream, &shared).await;
                });
            }
        });
        FaultProxy {
            uri: format!("http://127.0.0.1:{port}"),
            script,
            routes,
            seen,
            chaos,
            faults,
            task,
        }
    }

    /// Draws a random fault for every request the script and routes leave alone.
    pub fn chaos(&self, chaos: Chaos) {
        *self.chaos.lock().unwrap() = Some(chaos);
    }

    /// The faults injected so far (other than passing), one line each: the fault and the request.
    pub fn injected(&self) -> Vec<String> {
        self.faults.lock().unwrap().clone()
    }

    /// Answers every request whose path starts with `prefix` with `fault` (an endpoint the
    /// server does not have, such as a Databricks workspace API).
    pub fn route(&self, prefix: &str, fault: Fault) {
        self.routes
            .lock()
            .unwrap()
            .push((prefix.to_string(), fault));
    }

    /// Answers the first request whose request line contains `needle` with `fault` (before the
    /// script is consulted); later ones pass.
    pub fn once_for(&self, needle: &str, fault: Fault) {
        self.routes
            .lock()
            .unwrap()
            .push((format!("{ONCE}{needle}"), fault));
    }

    /// Queues faults for the next requests, in order.
    pub fn push(&self, faults: impl IntoIterator<Item = Fault>) {
        self.script.lock().unwrap().extend(faults);
    }

    /// The request heads seen so far (request line and headers, lowercase header names).
    pub fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    /// The request lines seen so far (`METHOD /path?query`).
    pub fn request_lines(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|h| {
                let line = h.lines().next().unwrap_or("");
                line.rsplit_once(' ')
                    .map(|(a, _)| a)
                    .unwrap_or(line)
                    .to_string()
            })
            .collect()
    }

    /// Forgets the requests seen so far.
    pub fn clear(&self) {
        self.seen.lock().unwrap().clear();
    }
}

async fn read_request(conn: &mut TcpStream) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = conn.read(&mut tmp).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = conn.read(&mut tmp).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&tmp[..n]);
    }
    Ok(Some((head, body)))
}

#[derive(Clone)]
struct Shared {
    script: Arc<Mutex<VecDeque<Fault>>>,
    routes: Routes,
    seen: Arc<Mutex<Vec<String>>>,
    chaos: Arc<Mutex<Option<Chaos>>>,
    faults: Arc<Mutex<Vec<String>>>,
}

async fn serve(mut conn: TcpStream, upstream: &str, shared: &Shared) -> std::io::Result<()> {
    let Shared {
        script,
        routes,
        seen,
        chaos,
        faults,
    } = shared;
    let Some((head, body)) = read_request(&mut conn).await? else {
        return Ok(());
    };
    let normalized: String = head
        .lines()
        .enumerate()
        .map(|(i, l)| match (i, l.split_once(':')) {
            (0, _) | (_, None) => l.to_string(),
            (_, Some((k, v))) => format!("{}:{}", k.to_ascii_lowercase(), v),
        })
        .collect::<Vec<_>>()
        .join("\n");
    seen.lock().unwrap().push(normalized);
    let path = head.split(' ').nth(1).unwrap_or("");
    let routed = {
        let mut routes = routes.lock().unwrap();
        let line = head.lines().next().unwrap_or("");
        let i = routes
            .iter()
            .position(|(key, _)| match key.strip_prefix(ONCE) {
                Some(needle) => line.contains(needle),
                None => path.starts_with(key.as_str()),
            });
        match i {
            Some(i) if routes[i].0.starts_with(ONCE) => Some(routes.remove(i).1),
            Some(i) => Some(routes[i].1.clone()),
            None => None,
        }
    };
    let scripted = script.lock().unwrap().pop_front();
    let fault = match (routed, scripted) {
        (Some(f), _) | (None, Some(f)) => f,
        (None, None) => chaos
            .lock()
            .unwrap()
            .as_mut()
            .map_or(Fault::Pass, Chaos::draw),
    };
    if !matches!(fault, Fault::Pass) {
        let line = head.lines().next().unwrap_or("").to_string();
        faults.lock().unwrap().push(format!("{fault:?}: {line}"));
    }
    match fault {
        Fault::DropBeforeForward => Ok(()),
        Fault::Status(code, retry_after) => {
            let ra = retry_after
                .map(|s| format!("Retry-After: {s}\r\n"))
                .unwrap_or_default();
            let body = format!(
                r#"{{"error_code":"TEMPORARILY_UNAVAILABLE","message":"injected {code}"}}"#
            );
            let resp = format!(
                "HTTP/1.1 {code} Injected\r\n{ra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            conn.write_all(resp.as_bytes()).await
        }
        Fault::Reply(code, ctype, body) => {
            let resp = format!(
                "HTTP/1.1 {code} Injected\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            conn.write_all(resp.as_bytes()).await
        }
        Fault::Pass
        | Fault::DropAfterForward
        | Fault::CutBody(_)
        | Fault::StallBody(..)
        | Fault::PassWithoutRange => {
            let mut up = TcpStream::connect(upstream).await?;
            let strip_range = matches!(fault, Fault::PassWithoutRange);
            let head: String = head
                .split("\r\n")
                .filter(|l| {
                    let l = l.to_ascii_lowercase();
                    let hop = l.starts_with("connection:") || l.starts_with("keep-alive:");
                    !(hop || (strip_range && l.starts_with("range:")))
                })
                .filter(|l| !l.is_empty())
                .map(|l| format!("{l}\r\n"))
                .collect();
            up.write_all(head.as_bytes()).await?;
            up.write_all(b"Connection: close\r\n\r\n").await?;
            up.write_all(&body).await?;
            let mut resp = Vec::new();
            up.read_to_end(&mut resp).await?;
            let resp = with_connection_close(resp);
            let body_start = resp
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map_or(resp.len(), |i| i + 4);
            // Where a cut or a stall falls: inside the body, after at least the head.
            let at = |fraction: f64| {
                let len = resp.len() - body_start;
                body_start + ((len as f64 * fraction) as usize).min(len.saturating_sub(1))
            };
            match fault {
                Fault::Pass | Fault::PassWithoutRange => conn.write_all(&resp).await?,
                Fault::CutBody(f) => conn.write_all(&resp[..at(f)]).await?,
                Fault::StallBody(f, pause) => {
                    conn.write_all(&resp[..at(f)]).await?;
                    conn.flush().await?;
                    tokio::time::sleep(pause).await;
                }
                _ => {}
            }
            Ok(())
        }
    }
}

/// The answer with `Connection: close` in its head, so the client never reuses the connection.
fn with_connection_close(resp: Vec<u8>) -> Vec<u8> {
    let Some(end) = resp.windows(4).position(|w| w == b"\r\n\r\n") else {
        return resp;
    };
    let head = String::from_utf8_lossy(&resp[..end]).to_string();
    if head.to_ascii_lowercase().contains("\r\nconnection: close") {
        return resp;
    }
    let mut lines: Vec<&str> = head
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    lines.insert(1, "Connection: close");
    let mut out = lines.join("\r\n").into_bytes();
    out.extend_from_slice(&resp[end..]);
    out
}
