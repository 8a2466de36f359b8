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
}

/// A running proxy.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`.
    pub uri: String,
    script: Arc<Mutex<VecDeque<Fault>>>,
    routes: Routes,
    seen: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

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
        let (s2, r2, seen2) = (script.clone(), routes.clone(), seen.clone());
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let (script, routes, seen, upstream) =
                    (s2.clone(), r2.clone(), seen2.clone(), upstream.clone());
                tokio::spawn(async move {
                    let _ = serve(conn, &upstream, &script, &routes, &seen).await;
                });
            }
        });
        FaultProxy {
            uri: format!("http://127.0.0.1:{port}"),
            script,
            routes,
            seen,
            task,
        }
    }

    /// Answers every request whose path starts with `prefix` with `fault` (an endpoint the
    /// server does not have, such as a Databricks workspace API).
    pub fn route(&self, prefix: &str, fault: Fault) {
        self.routes
            .lock()
            .unwrap()
            .push((prefix.to_string(), fault));
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

async fn serve(
    mut conn: TcpStream,
    upstream: &str,
    script: &Mutex<VecDeque<Fault>>,
    routes: &Mutex<Vec<(String, Fault)>>,
    seen: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
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
    let routed = routes
        .lock()
        .unwrap()
        .iter()
        .find(|(prefix, _)| path.starts_with(prefix.as_str()))
        .map(|(_, f)| f.clone());
    let fault = match routed {
        Some(f) => f,
        None => script.lock().unwrap().pop_front().unwrap_or(Fault::Pass),
    };
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
        Fault::Pass | Fault::DropAfterForward => {
            let mut up = TcpStream::connect(upstream).await?;
            let head: String = head
                .split("\r\n")
                .filter(|l| {
                    !l.to_ascii_lowercase().starts_with("connection:")
                        && !l.to_ascii_lowercase().starts_with("keep-alive:")
                })
                .filter(|l| !l.is_empty())
                .map(|l| format!("{l}\r\n"))
                .collect();
            up.write_all(head.as_bytes()).await?;
            up.write_all(b"Connection: close\r\n\r\n").await?;
            up.write_all(&body).await?;
            let mut resp = Vec::new();
            up.read_to_end(&mut resp).await?;
            if matches!(fault, Fault::Pass) {
                conn.write_all(&with_connection_close(resp)).await?;
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
