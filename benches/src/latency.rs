//! Per-request latency of the client against a real server (MLFLOW-REST.md, pitfall 1: a kept-alive
//! connection to MLflow's uvicorn server was measured at ~44 ms per request from Python, a fresh
//! one at ~4 ms). Sends N sequential small requests (`experiments/get`) with the connection pool on
//! (one kept-alive connection) and off (a new connection each time), and prints the mean and median.
//!
//!     cargo run --release --bin latency -- http://127.0.0.1:5000 [N]
//!
//! `benches/latency.sh` starts a local server and runs it.

use std::time::Instant;

use mlflow_archive::mlflow::{ClientBuilder, TrackingConfig};

fn main() {
    let mut args = std::env::args().skip(1);
    let uri = args.next().expect("usage: latency URI [N]");
    let n: usize = args.next().map_or(200, |s| s.parse().expect("N"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for reuse in [true, false] {
        let client = ClientBuilder::new(TrackingConfig::for_uri(&uri).expect("uri"))
            .reuse_connections(reuse)
            .build()
            .expect("client");
        let mut ms: Vec<f64> = Vec::with_capacity(n);
        rt.block_on(async {
            client.get_experiment("0").await.expect("warm-up");
            for _ in 0..n {
                let t = Instant::now();
                client.get_experiment("0").await.expect("request");
                ms.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        });
        ms.sort_by(f64::total_cmp);
        let mean = ms.iter().sum::<f64>() / n as f64;
        println!(
            "{:<28} {n} requests: mean {mean:.2} ms, median {:.2} ms, p95 {:.2} ms",
            if reuse {
                "kept-alive connection"
            } else {
                "new connection per request"
            },
            ms[n / 2],
            ms[n * 95 / 100]
        );
    }
}
