//! How many requests a client has in flight at once: a gate every request to the tracking server
//! passes, sized by a fixed number or by what the client measures of the server.
//!
//! # What a slot covers
//!
//! A request takes a slot just before it is sent and gives it back when its answer's status and
//! headers arrive, or when it fails. Answer bodies are read without a slot: a download is
//! streamed into the archive later, and an ordered export that held slots across that could
//! stall every request behind a unit that is not at the front. A streamed upload holds its slot
//! until its answer arrives (its body is part of the request), so its body must not wait for a
//! request of the same client: a copy whose source and destination were one `Client` would
//! stall once every slot is an upload waiting for a download that resumes after a cut (copies
//! use a client per side). Waiting for a slot counts against no timeout; the answer timeout
//! starts when the request is sent. The OAuth token endpoint and
//! the artifact stores reached directly (object stores, Databricks signed URLs) are other servers
//! and are not gated.
//!
//! # What it measures
//!
//! Samples are the JSON API calls (an empty request body or one of JSON up to
//! [`MAX_SAMPLED_BODY`], a JSON answer read whole) that got a success status: the time from
//! sending to the answer's headers, and how many requests were in flight when each was sent.
//! Uploads and downloads of artifacts are never samples: their time depends on their bytes, not
//! on the server's queue (MLflow's proxy even copies a whole file before it answers a download). Error answers are not samples either (a 404 or a
//! 400 is answered without the work the call does when it succeeds), but some are signals:
//! 429, 502, 503 and 504 say the server (or its proxy) could not take the request, and a request
//! that got no answer in time, or whose connection failed or broke, says the same less politely.
//!
//! # How it decides
//!
//! [`Concurrency::Fixed`] sets the gate once; nothing changes it. [`Concurrency::Adaptive`] is
//! TCP Vegas's estimate applied to requests, with a multiplicative cut on overload signals:
//!
//! - Each kind of call (its API path, ids left out: `runs/log-batch`, `runs/search`, ...) has
//!   a *base* RTT, the least of its samples: a request that waited in no queue. It follows a
//!   server (or path) that got slower only from requests sent while at most [`CLEAN_INFLIGHT`]
//!   were in flight, [`CLEAN_SAMPLES`] of them, whose least then replaces it (a base that is
//!   too low pushes the limit down to where such samples are all there are).
//! - A *window* is the answers to the requests sent since the limit last changed; it closes at
//!   [`MIN_WINDOW`] answers, or as many as the limit (about one round trip), and decides:
//! - [`MIN_OVERLOADS`] or more overload signals in it: the limit falls to [`BACKOFF`] (three
//!   quarters) of itself. Signals of requests sent before the last cut (a timeout comes long
//!   after its request) count in no later window: one cut answers them.
//! - Otherwise the least RTT of each kind in it and its average in-flight count give the number
//!   of requests queued at the server by Little's law: `queued = in_flight × (1 − base / rtt)`,
//!   with `base` and `rtt` the sums over the window's samples of their kind's base and least
//!   (for one kind of call, its base and least). While latency
//!   dominates, RTT does not rise with the in-flight count and `queued` stays near 0; once the
//!   server's workers are all busy, each added request only waits, and `queued` grows one for
//!   one with the limit. `queued < alpha` (and the limit is in use: at least half of it in
//!   flight): twice the limit until the first sign of a queue ("slow start"), then a
//!   [`GROWTH`]th more (at least one); `queued > beta`: fewer by the excess, at most half; in
//!   between, or without samples: unchanged. `alpha = max(1, 2·log10(limit))`,
//!   `beta = 2·alpha` (1–2 requests queued at small limits, 3–6 at 32): enough queued that the
//!   server never idles between two answers, few enough that a 2-worker server's answers stay
//!   fast. Log scaling lets a large limit absorb more RTT jitter before it reads as a queue.
//! - The limit stays within `1..=max`; it starts at [`START`] (or `max` if lower).
//!
//! The constants of the cut were chosen on simulated servers (this module's tests), against two
//! kinds of refusals. A server that refuses past a short queue (2 workers, 20 ms a request,
//! 50 ms each way, 429 when 4 wait): refusals hide its queue from the RTT (refused requests are
//! not samples, and the others never wait long), so without the cut the limit climbs to `max`
//! and 64 % of the requests are refused; with it, 3 % are, at 98 % of the best fixed limit's
//! throughput (halving: 89 %). A flaky proxy that refuses 1 % of requests whatever the load
//! (100 ms each way): the limit stays at 20–32, 89 % of a fixed 32's throughput; halving gives
//! 68 %, and cutting on a single refusal 48 %. Refusals at random in larger shares still cost
//! much (10 %: a limit of 4–10, a quarter of a fixed 32's throughput): a fixed setting is the
//! answer to such a proxy.
//!
//! The window's *least* RTT of a kind, not its mean, is compared with the base: requests on
//! newly opened connections (a TCP and TLS handshake more), and heavier calls of the kind (a
//! `log-batch` of 1000 metrics next to one of 10), make a mean look queued; the least of a
//! window is as light a request as the base was, and it too waits when every request waits.
//!
//! Why each kind against its own base, not the window's least against the least ever: calls do
//! not all wait in one queue. MLflow's sqlite store takes one writer at a time, so at 100 ms each
//! way an import's writes (`log-batch`, `runs/create`, `set-tag`) waited 0.5–1.3 s each while
//! its reads (`runs/search`) came back in their base time; the window's least was a read, read
//! as no queue, and the limit stayed near 32 (28.9 on average) with a dozen writes waiting at
//! the lock, and now and then a request stalled 30 s for a database connection (SQLAlchemy's
//! pool of 15 per worker process ran out). This module's simulated server with such a lock (a
//! write holding it 40 ms, reads 5 ms, 100 ms each way): the limit settles at 15–20 instead of
//! 26–32, at the best fixed limit's throughput, with the mean round trip 365 ms instead of
//! 626 ms.
//!
//! Why not a gradient limiter (Netflix's Gradient2): its long-term RTT is an exponential average
//! of the same samples, so under a steady queue it converges to the queued RTT, the gradient
//! returns to 1 and the limit grows again by its allowance; it settles where the short-term RTT
//! outruns the average by its tolerance (1.5×), wherever the queue then is. A 2-worker server at
//! zero latency needs 2–4 in flight, and Vegas's base does not follow the queue. (Reasoned from
//! its design, not simulated here.)
//!
//! What it cannot see: a base that rose (a new network path, a server that got slower for good)
//! while the limit stays high is refreshed only when few requests are in flight (a lull, or
//! the limit pushed down by it); until then the limit is lower than it could be, never higher.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::Client;
use super::gate::{Gate, Permit};
use crate::error::TransportKind;

/// The default of [`Concurrency::Adaptive`]'s `max`.
pub const DEFAULT_MAX_CONCURRENCY: usize = 32;
/// Where an adaptive limit starts.
pub const START: usize = 8;
/// The fewest answers a window decides on.
pub const MIN_WINDOW: usize = 8;
/// Samples sent with at most this many requests in flight (itself included) waited in no queue
/// of ours, and may correct a base that is too low.
pub const CLEAN_INFLIGHT: usize = 2;
/// How many such samples replace the base with their least.
pub const CLEAN_SAMPLES: usize = 8;
/// What a window with refusals (or failures) leaves of the limit.
pub const BACKOFF: f64 = 0.75;
/// How many refusals (or failures) in one window cut the limit: one alone may be chance.
pub const MIN_OVERLOADS: usize = 2;
/// Growth once past slow start: a twelfth of the limit per window, at least one.
pub const GROWTH: f64 = 12.0;
/// The largest limit either setting takes (a larger one counts as this).
pub const MAX_LIMIT: usize = 4096;
/// Larger JSON request bodies are not samples: sending them takes time of its own.
pub const MAX_SAMPLED_BODY: usize = 256 << 10;
/// How many kinds of call (API paths) get a base of their own; further ones share the last.
pub const MAX_KINDS: usize = 64;

/// How many requests a [`Client`] (and its clones) sends to its server at once. A request holds
/// a slot from when it is sent until its answer's headers arrive (a streamed upload until its
/// answer); reading an answer's body needs none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concurrency {
    /// Exactly this many (1 to 4096), whatever the server answers.
    Fixed(usize),
    /// From 1 to `max` (at most 4096), starting at 8: more while the round trips of JSON calls do
    /// not rise with the requests in flight (latency, not the server, sets the pace), fewer when
    /// they do (requests queue at the server) and when the server refuses requests (429, 502,
    /// 503, 504) or does not answer.
    Adaptive {
        /// The most ever in flight.
        max: usize,
    },
}

impl Default for Concurrency {
    /// `Adaptive { max: 32 }`.
    fn default() -> Self {
        Concurrency::Adaptive {
            max: DEFAULT_MAX_CONCURRENCY,
        }
    }
}

/// What a client's concurrency limit did so far, for a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConcurrencySummary {
    /// The setting.
    pub concurrency: Concurrency,
    /// The limit now.
    pub now: usize,
    /// The lowest limit in force so far.
    pub lowest: usize,
    /// The highest limit in force so far.
    pub highest: usize,
    /// The round trips measured (successful JSON API calls).
    pub samples: u64,
    /// The overload signals seen (answers 429, 502, 503 and 504, timeouts, failed or broken
    /// connections), whether or not they cut the limit.
    pub overloads: u64,
    /// The least round trip measured: the base that queueing is measured against.
    pub base_rtt: Option<Duration>,
}

/// How a request that held a slot ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// An answer with this status arrived.
    Answer(u16),
    /// No answer: the connection failed, broke or timed out.
    Failed(TransportKind),
    /// No answer, for a reason of the client's (a streamed request body that failed): no signal.
    Abandoned,
}

/// The gate of one client and its clones.
#[derive(Debug)]
pub(crate) struct Limiter {
    gate: Gate,
    state: Mutex<State>,
}

/// A slot of the gate, held by one request in flight; dropping it gives the slot back.
#[derive(Debug)]
pub(crate) struct Slot<'a> {
    limiter: &'a Limiter,
    permit: Option<Permit<'a>>,
    sent: Instant,
    inflight: usize,
    ticket: u64,
    kind: Option<usize>,
}

#[derive(Debug)]
struct State {
    concurrency: Concurrency,
    /// The adaptive limit (fractional steps add up); the gate holds its rounded value.
    limit: f64,
    /// Permits that exist: available + held − debt.
    size: usize,
    /// Permits to forget as they come back (the gate shrank below what was held).
    debt: usize,
    inflight: usize,
    /// Requests sent so far; each slot has its number.
    tickets: u64,
    /// Answers to requests sent before this ticket belong to an older limit.
    since: u64,
    /// Overload signals of requests sent before this ticket were answered by the last cut.
    cut: u64,
    slow_start: bool,
    /// The kinds of call seen, each with its base and its share of the window.
    kinds: Vec<Kind>,
    window: Window,
    lowest: usize,
    highest: usize,
    samples: u64,
    overloads: u64,
}

/// The answers to the requests sent since the last change of the limit.
#[derive(Debug, Default)]
struct Window {
    answers: usize,
    overloads: usize,
    samples: usize,
    inflight_sum: usize,
}

/// One kind of call (an API path): its base, and its samples in the current window.
#[derive(Debug)]
struct Kind {
    name: String,
    /// The least round trip of this kind: one that waited in no queue.
    base: Option<Duration>,
    /// Round trips sent with few in flight, to correct a base that is too low.
    clean: Vec<Duration>,
    samples: usize,
    least: Option<Duration>,
}

impl Kind {
    /// Takes a round trip sent with `inflight` in flight into the base.
    fn measured(&mut self, rtt: Duration, inflight: usize) {
        self.base = Some(self.base.map_or(rtt, |b| b.min(rtt)));
        if inflight <= CLEAN_INFLIGHT {
            self.clean.push(rtt);
            if self.clean.len() >= CLEAN_SAMPLES {
                self.base = self.clean.iter().min().copied();
                self.clean.clear();
            }
        }
    }
}

/// The kind of call at an API path: the path with its ids (segments with a digit, other than a
/// version such as `2.0`) left out, so that `logged-models/m-1f…/tags` of every model is one kind.
fn kind_of(path: &str) -> String {
    let segments = path.split('/').map(|seg| {
        let version = seg
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if !version && seg.bytes().any(|b| b.is_ascii_digit()) {
            "*"
        } else {
            seg
        }
    });
    segments.collect::<Vec<_>>().join("/")
}

fn alpha(limit: f64) -> f64 {
    (2.0 * limit.log10()).max(1.0)
}

fn beta(limit: f64) -> f64 {
    2.0 * alpha(limit)
}

impl State {
    fn new(concurrency: Concurrency) -> Self {
        let mut s = State {
            concurrency,
            limit: 1.0,
            size: 0,
            debt: 0,
            inflight: 0,
            tickets: 0,
            since: 0,
            cut: 0,
            slow_start: true,
            kinds: Vec::new(),
            window: Window::default(),
            lowest: usize::MAX,
            highest: 0,
            samples: 0,
            overloads: 0,
        };
        s.configure(concurrency);
        s
    }

    fn configure(&mut self, concurrency: Concurrency) {
        self.concurrency = concurrency;
        self.limit = match concurrency {
            Concurrency::Fixed(_) => self.max(),
            Concurrency::Adaptive { .. } => self.max().min(START as f64),
        };
        self.slow_start = true;
        self.cut = self.tickets;
        self.restart_window();
    }

    fn max(&self) -> f64 {
        match self.concurrency {
            Concurrency::Fixed(n) | Concurrency::Adaptive { max: n } => {
                n.clamp(1, MAX_LIMIT) as f64
            }
        }
    }

    fn adaptive(&self) -> bool {
        matches!(self.concurrency, Concurrency::Adaptive { .. })
    }

    /// The gate's size for the limit.
    fn target(&self) -> usize {
        (self.limit.round() as usize).max(1)
    }

    fn restart_window(&mut self) {
        self.window = Window::default();
        for k in &mut self.kinds {
            k.samples = 0;
            k.least = None;
        }
        self.since = self.tickets;
    }

    /// The index of the kind of call at API path `path` (the last one once [`MAX_KINDS`] are
    /// known).
    fn kind(&mut self, path: &str) -> usize {
        let name = kind_of(path);
        if let Some(i) = self.kinds.iter().position(|k| k.name == name) {
            return i;
        }
        if self.kinds.len() >= MAX_KINDS {
            return MAX_KINDS - 1;
        }
        self.kinds.push(Kind {
            name,
            base: None,
            clean: Vec::new(),
            samples: 0,
            least: None,
        });
        self.kinds.len() - 1
    }

    /// The least round trip of any kind.
    fn base(&self) -> Option<Duration> {
        self.kinds.iter().filter_map(|k| k.base).min()
    }

    fn set_limit(&mut self, limit: f64) {
        self.limit = limit.clamp(1.0, self.max());
        self.restart_window();
    }

    /// What the answer to (or failure of) request number `ticket` tells.
    fn record(&mut self, ticket: u64, seen: Seen) {
        match seen {
            Seen::Sample {
                rtt,
                inflight,
                kind,
            } => {
                self.samples += 1;
                self.kinds[kind].measured(rtt, inflight);
            }
            Seen::Overload => self.overloads += 1,
            Seen::Nothing => {}
        }
        if !self.adaptive() {
            return;
        }
        let size = MIN_WINDOW.max(self.target());
        let w = &mut self.window;
        match seen {
            // A refusal or a timeout may come long after its request was sent: it counts
            // unless a cut already answered it.
            Seen::Overload if ticket >= self.cut => w.overloads += 1,
            _ if ticket < self.since => return,
            Seen::Sample {
                rtt,
                inflight,
                kind,
            } => {
                w.samples += 1;
                w.inflight_sum += inflight;
                let k = &mut self.kinds[kind];
                k.samples += 1;
                k.least = Some(k.least.map_or(rtt, |l| l.min(rtt)));
            }
            Seen::Overload | Seen::Nothing => {}
        }
        w.answers += 1;
        if w.answers >= size {
            let next = self.decide();
            self.set_limit(next);
        }
    }

    /// The limit for the next window, from the one that closed.
    fn decide(&mut self) -> f64 {
        let w = &self.window;
        let limit = self.limit;
        if w.overloads >= MIN_OVERLOADS {
            self.slow_start = false;
            self.cut = self.tickets;
            let next = limit * BACKOFF;
            tracing::debug!(
                "concurrency: {limit:.1} -> {next:.1} ({} of {} answers refused or failed)",
                w.overloads,
                w.answers
            );
            return next;
        }
        // Each kind's least round trip against its own base: the share of a round trip spent
        // waiting, weighted by how many of the window's samples each kind has.
        let (mut waited, mut took) = (0.0, 0.0);
        for k in &self.kinds {
            if let (Some(base), Some(least)) = (k.base, k.least) {
                let n = k.samples as f64;
                waited += n * (least.as_secs_f64() - base.as_secs_f64());
                took += n * least.as_secs_f64();
            }
        }
        if took <= 0.0 || w.samples == 0 {
            return limit;
        }
        let in_flight = w.inflight_sum as f64 / w.samples as f64;
        let queued = in_flight * waited / took;
        let used = in_flight >= limit / 2.0;
        let next = if queued < alpha(limit) {
            match (used, self.slow_start) {
                (false, _) => limit,
                (true, true) => limit * 2.0,
                (true, false) => limit + (limit / GROWTH).max(1.0),
            }
        } else {
            self.slow_start = false;
            if queued > beta(limit) {
                (limit - (queued - beta(limit))).max(limit / 2.0)
            } else {
                limit
            }
        };
        tracing::debug!(
            "concurrency: {limit:.1} -> {next:.1} ({queued:.1} queued, {in_flight:.1} in flight, {:.0} % of the least round trips waiting)",
            100.0 * waited / took
        );
        next
    }
}

/// What one answer tells the limit.
#[derive(Debug, Clone, Copy)]
enum Seen {
    /// A round trip of a call of kind `kind`, sent with `inflight` in flight (itself included).
    Sample {
        rtt: Duration,
        inflight: usize,
        kind: usize,
    },
    /// The server could not take the request, or did not answer.
    Overload,
    Nothing,
}

/// Whether an answer's status says the server could not take the request.
fn overloaded(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

impl Limiter {
    pub(crate) fn new(concurrency: Concurrency) -> Self {
        let mut state = State::new(concurrency);
        let size = state.target();
        state.size = size;
        state.lowest = size;
        state.highest = size;
        Limiter {
            gate: Gate::new(size),
            state: Mutex::new(state),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is consistent after every statement that a panic could interrupt.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits for a slot, served by the task's priority
    /// ([`with_priority`](super::gate::with_priority)). `kind`: the request's round trip may be
    /// measured (a JSON API call), against others of its kind (its API path).
    pub(crate) async fn acquire(&self, kind: Option<&str>) -> Slot<'_> {
        let permit = Some(self.gate.acquire().await);
        let mut st = self.lock();
        st.inflight += 1;
        st.tickets += 1;
        let kind = kind.map(|k| st.kind(k));
        Slot {
            limiter: self,
            permit,
            sent: Instant::now(),
            inflight: st.inflight,
            ticket: st.tickets - 1,
            kind,
        }
    }

    /// Sets the gate to the state's limit: new permits, or fewer (those in use are forgotten as
    /// they come back).
    fn resize(&self, st: &mut State) {
        let target = st.target();
        if target > st.size {
            let mut add = target - st.size;
            let paid = add.min(st.debt);
            st.debt -= paid;
            add -= paid;
            self.gate.add_permits(add);
        } else if target < st.size {
            let cut = st.size - target;
            let gone = self.gate.forget_permits(cut);
            st.debt += cut - gone;
        }
        st.size = target;
        st.lowest = st.lowest.min(target);
        st.highest = st.highest.max(target);
    }

    pub(crate) fn set(&self, concurrency: Concurrency) {
        let mut st = self.lock();
        st.configure(concurrency);
        self.resize(&mut st);
    }

    pub(crate) fn now(&self) -> usize {
        self.lock().size
    }

    pub(crate) fn summary(&self) -> ConcurrencySummary {
        let st = self.lock();
        ConcurrencySummary {
            concurrency: st.concurrency,
            now: st.size,
            lowest: st.lowest,
            highest: st.highest,
            samples: st.samples,
            overloads: st.overloads,
            base_rtt: st.base(),
        }
    }
}

impl Slot<'_> {
    /// Gives the slot back, learning from how the request ended.
    pub(crate) fn done(self, outcome: Outcome) {
        let limiter = self.limiter;
        let mut st = limiter.lock();
        let seen = match (outcome, self.kind) {
            (Outcome::Answer(s), Some(kind)) if (200..300).contains(&s) => Seen::Sample {
                rtt: self.sent.elapsed(),
                inflight: self.inflight,
                kind,
            },
            (Outcome::Answer(s), _) if overloaded(s) => Seen::Overload,
            (Outcome::Failed(TransportKind::Tls) | Outcome::Answer(_) | Outcome::Abandoned, _) => {
                Seen::Nothing
            }
            (Outcome::Failed(_), _) => Seen::Overload,
        };
        st.record(self.ticket, seen);
        limiter.resize(&mut st);
        drop(st);
        // `Drop` gives the permit back.
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut st = self.limiter.lock();
        st.inflight -= 1;
        if let Some(p) = self.permit.take() {
            if st.debt > 0 {
                st.debt -= 1;
                p.forget();
            } else {
                drop(p);
            }
        }
    }
}

impl Client {
    /// How many requests this client (with its clones) may have in flight now.
    pub fn concurrency_now(&self) -> usize {
        self.inner.limit.now()
    }

    /// What the concurrency limit did so far: its setting, its range, its samples.
    pub fn concurrency_summary(&self) -> ConcurrencySummary {
        self.inner.limit.summary()
    }

    /// Changes how many requests this client and its clones send at once (set when the client is
    /// built with [`ClientBuilder::concurrency`](super::ClientBuilder::concurrency)). Requests in
    /// flight finish; a smaller limit holds new ones back until fewer are in flight. An adaptive
    /// setting starts over from 8 (or `max`), keeping the base round trip it measured.
    pub fn set_concurrency(&self, concurrency: Concurrency) {
        self.inner.limit.set(concurrency);
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use futures_util::future::join_all;
    use tokio::time::sleep;

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// A simulated server: `workers` workers taking `service` per request, `delay` away each
    /// way; with `queue`, a request that finds that many waiting for a worker is answered 429 at
    /// once.
    #[derive(Debug, Clone, Copy)]
    struct Sim {
        workers: usize,
        service: Duration,
        delay: Duration,
        queue: Option<usize>,
        /// Calls of mixed weight (from a fifth to 4 times `service`) over a path whose delay
        /// varies by up to a fifth either way, drawn from a fixed sequence.
        mixed: bool,
        /// The share of requests answered 503 at once whatever the load (a flaky proxy).
        faults: f64,
        /// `(share, hold)`: that share of the calls are writes, which once on a worker take a
        /// lock (sqlite's: one writer at a time) and hold it `hold`; the others are reads,
        /// taking `service` on a worker. The two are kinds of call of their own.
        lock: Option<(f64, Duration)>,
    }

    /// What a simulated run measured over its second half.
    #[derive(Debug)]
    struct Run {
        /// Successful answers a second.
        rate: f64,
        /// 429 answers, as a share of all answers.
        refused: f64,
        /// The limit, every 100 ms.
        limits: Vec<usize>,
        /// The most requests in flight at once.
        max_inflight: usize,
        /// The mean round trip of successful requests.
        rtt: Duration,
    }

    impl Run {
        fn mean_limit(&self) -> f64 {
            self.limits.iter().sum::<usize>() as f64 / self.limits.len() as f64
        }
    }

    /// 64 clients sending back to back through `limiter` to `sim` for `secs` (virtual) seconds.
    async fn drive(limiter: &Limiter, sim: Sim, secs: u64) -> Run {
        let workers = tokio::sync::Semaphore::new(sim.workers);
        let waiting = Cell::new(0usize);
        let start = Instant::now();
        let end = start + Duration::from_secs(secs);
        let half = start + Duration::from_secs(secs / 2);
        let (ok, refused) = (Cell::new(0u64), Cell::new(0u64));
        let rtt_sum = Cell::new(Duration::ZERO);
        let (inflight, max_inflight) = (Cell::new(0usize), Cell::new(0usize));
        let seed = Cell::new(0x2545_f491_4f6c_dd1du64);
        // A fixed sequence in 0..1 (xorshift), the same on every run.
        let draw = || {
            let mut x = seed.get();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            seed.set(x);
            (x >> 11) as f64 / (1u64 << 53) as f64
        };
        let vary = |d: Duration, lo: f64, hi: f64| {
            if sim.mixed {
                d.mul_f64(lo + (hi - lo) * draw())
            } else {
                d
            }
        };
        let travel = || async {
            if !sim.delay.is_zero() {
                sleep(vary(sim.delay, 0.8, 1.2)).await;
            }
        };
        let writer = tokio::sync::Semaphore::new(1);
        let (workers, writer, waiting, draw, vary) = (&workers, &writer, &waiting, &draw, &vary);
        let serve = |write: bool| async move {
            if sim.faults > 0.0 && draw() < sim.faults {
                return 503;
            }
            if sim.queue.is_some_and(|q| waiting.get() >= q) {
                return 429;
            }
            waiting.set(waiting.get() + 1);
            let worker = workers.acquire().await.unwrap();
            waiting.set(waiting.get() - 1);
            match sim.lock {
                Some((_, hold)) if write => {
                    let _lock = writer.acquire().await.unwrap();
                    sleep(hold).await;
                }
                _ => sleep(vary(sim.service, 0.2, 4.0)).await,
            }
            drop(worker);
            200
        };
        let client = || async {
            while Instant::now() < end {
                let (write, kind) = match sim.lock {
                    Some((share, _)) if draw() < share => (true, "write"),
                    Some(_) => (false, "read"),
                    None => (false, "call"),
                };
                let slot = limiter.acquire(Some(kind)).await;
                inflight.set(inflight.get() + 1);
                max_inflight.set(max_inflight.get().max(inflight.get()));
                let sent = Instant::now();
                travel().await;
                let status = serve(write).await;
                travel().await;
                slot.done(Outcome::Answer(status));
                inflight.set(inflight.get() - 1);
                if Instant::now() >= half {
                    if status == 200 {
                        ok.set(ok.get() + 1);
                        rtt_sum.set(rtt_sum.get() + sent.elapsed());
                    } else {
                        refused.set(refused.get() + 1);
                    }
                }
            }
        };
        let watch = async {
            let mut limits = Vec::new();
            while Instant::now() < end {
                if Instant::now() >= half {
                    limits.push(limiter.now());
                }
                sleep(100 * MS).await;
            }
            limits
        };
        let (limits, _) = tokio::join!(watch, join_all((0..64).map(|_| client())));
        let measured = (secs - secs / 2) as f64;
        let answers = (ok.get() + refused.get()).max(1) as f64;
        Run {
            rate: ok.get() as f64 / measured,
            refused: refused.get() as f64 / answers,
            limits,
            max_inflight: max_inflight.get(),
            rtt: rtt_sum.get() / u32::try_from(ok.get().max(1)).unwrap(),
        }
    }

    async fn run(concurrency: Concurrency, sim: Sim) -> (Run, ConcurrencySummary) {
        let limiter = Limiter::new(concurrency);
        let run = drive(&limiter, sim, 20).await;
        (run, limiter.summary())
    }

    /// The best throughput of a fixed limit (1 to 32) on `sim`.
    async fn best_fixed(sim: Sim) -> f64 {
        let mut best: f64 = 0.0;
        for n in [1, 2, 3, 4, 6, 8, 12, 16, 24, 32] {
            best = best.max(run(Concurrency::Fixed(n), sim).await.0.rate);
        }
        best
    }

    const ADAPTIVE: Concurrency = Concurrency::Adaptive { max: 32 };

    #[tokio::test(start_paused = true)]
    async fn latency_bound_climbs_to_the_ceiling() {
        // 100 ms each way to a 2-worker server taking 5 ms: 400 requests/s would need 82 in
        // flight; every request more is throughput more, up to the ceiling.
        let sim = Sim {
            workers: 2,
            service: 5 * MS,
            delay: 100 * MS,
            queue: None,
            mixed: false,
            faults: 0.0,
            lock: None,
        };
        let (adaptive, summary) = run(ADAPTIVE, sim).await;
        let (fixed, _) = run(Concurrency::Fixed(32), sim).await;
        eprintln!("{adaptive:?} {summary:?}\nfixed 32: {fixed:?}");
        assert!(adaptive.mean_limit() >= 30.0, "{adaptive:?}");
        assert!(adaptive.rate >= 0.9 * fixed.rate, "{adaptive:?} {fixed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn server_bound_settles_low() {
        // No latency, the same server: 2 in flight keep both workers busy, every request more
        // only waits (and makes every other client of the server wait).
        let sim = Sim {
            workers: 2,
            service: 5 * MS,
            delay: Duration::ZERO,
            queue: None,
            mixed: false,
            faults: 0.0,
            lock: None,
        };
        let (adaptive, summary) = run(ADAPTIVE, sim).await;
        let best = best_fixed(sim).await;
        eprintln!("{adaptive:?} {summary:?}\nbest fixed: {best}");
        assert!(adaptive.mean_limit() <= 6.0, "{adaptive:?}");
        assert!(adaptive.rtt <= 3 * sim.service, "{adaptive:?}");
        assert!(adaptive.rate >= 0.9 * best, "{adaptive:?} best {best}");
    }

    #[tokio::test(start_paused = true)]
    async fn refusals_bring_the_limit_down() {
        // 50 ms each way to a 2-worker server taking 20 ms that refuses (429) a request finding
        // 2 already waiting: 12 in flight keep it busy; beyond, requests are refused.
        let sim = Sim {
            workers: 2,
            service: 20 * MS,
            delay: 50 * MS,
            queue: Some(4),
            mixed: false,
            faults: 0.0,
            lock: None,
        };
        let (adaptive, summary) = run(ADAPTIVE, sim).await;
        let best = best_fixed(sim).await;
        eprintln!("{adaptive:?} {summary:?}\nbest fixed: {best}");
        assert!(adaptive.refused <= 0.05, "{adaptive:?}");
        assert!(adaptive.rate >= 0.9 * best, "{adaptive:?} best {best}");
        assert!(summary.overloads > 0, "{summary:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn refusals_by_chance_leave_the_limit_near_the_ceiling() {
        // A flaky proxy refusing 1 % of requests whatever the load: an answer to nothing.
        let sim = Sim {
            workers: 2,
            service: 5 * MS,
            delay: 100 * MS,
            queue: None,
            mixed: false,
            faults: 0.01,
            lock: None,
        };
        let (adaptive, summary) = run(ADAPTIVE, sim).await;
        let (fixed, _) = run(Concurrency::Fixed(32), sim).await;
        let seen = format!("{adaptive:?} {summary:?}\nfixed 32: {fixed:?}");
        assert!(adaptive.rate >= 0.85 * fixed.rate, "{seen}");
        assert!(adaptive.mean_limit() >= 24.0, "{seen}");
    }

    #[tokio::test(start_paused = true)]
    async fn mixed_calls_over_a_jittery_path_stay_near_the_best_fixed_limit() {
        // Calls from a fifth to 4 times the service time, delays varying by a fifth: the least
        // round trip of a window still tells a queue from a heavy call.
        for (workers, service, delay) in
            [(2, 5, 0), (8, 5, 0), (2, 5, 20), (4, 20, 50), (2, 5, 100)]
        {
            let sim = Sim {
                workers,
                service: service * MS,
                delay: delay * MS,
                queue: None,
                mixed: true,
                faults: 0.0,
                lock: None,
            };
            let (adaptive, summary) = run(ADAPTIVE, sim).await;
            let mut fixed = Vec::new();
            for n in [1, 2, 4, 8, 16, 32] {
                fixed.push((n, run(Concurrency::Fixed(n), sim).await.0.rate));
            }
            let best = fixed.iter().map(|f| f.1).fold(0.0, f64::max);
            // The fewest in flight that get 95 % of the best.
            let enough = fixed.iter().find(|f| f.1 >= 0.95 * best).unwrap().0;
            let seen = format!("{sim:?}: {adaptive:?} {summary:?} fixed {fixed:?}");
            assert!(adaptive.rate >= 0.9 * best, "{seen}");
            assert!(adaptive.mean_limit() <= (2 * enough + 2) as f64, "{seen}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn writes_waiting_for_a_lock_bring_the_limit_down_though_reads_do_not_wait() {
        // Half the calls write, one at a time (sqlite's lock), holding the lock 40 ms; the
        // others read, 5 ms on any of 16 workers; 100 ms each way. The lock passes 25 writes a
        // second, so 50 calls a second, which 11 or so in flight sustain; every request more is
        // a write waiting at the lock, while the reads still come back in their base time, so
        // the least round trip of all calls would say that nothing waits (an import's writes
        // next to its searches). Each kind's least against its own base sees the writes wait.
        let sim = Sim {
            workers: 16,
            service: 5 * MS,
            delay: 100 * MS,
            queue: None,
            mixed: false,
            faults: 0.0,
            lock: Some((0.5, 40 * MS)),
        };
        let (adaptive, summary) = run(ADAPTIVE, sim).await;
        let best = best_fixed(sim).await;
        let (fixed8, _) = run(Concurrency::Fixed(8), sim).await;
        let seen = format!("{adaptive:?} {summary:?}\nbest fixed: {best}; fixed 8: {fixed8:?}");
        eprintln!("{seen}");
        assert!(adaptive.mean_limit() <= 20.0, "{seen}");
        assert!(adaptive.rate >= 0.9 * best, "{seen}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_fixed_limit_never_changes() {
        // Servers that an adaptive limit answers with fewer: refusals (429), and a queue.
        for sim in [
            Sim {
                workers: 2,
                service: 20 * MS,
                delay: 50 * MS,
                queue: Some(4),
                mixed: false,
                faults: 0.0,
                lock: None,
            },
            Sim {
                workers: 2,
                service: 5 * MS,
                delay: Duration::ZERO,
                queue: None,
                mixed: true,
                faults: 0.0,
                lock: None,
            },
        ] {
            let (fixed, summary) = run(Concurrency::Fixed(16), sim).await;
            assert!(fixed.limits.iter().all(|&l| l == 16), "{fixed:?}");
            assert_eq!(fixed.max_inflight, 16, "{fixed:?}");
            assert_eq!((summary.lowest, summary.highest), (16, 16), "{summary:?}");
            assert!(summary.samples > 0, "{summary:?}");
        }
    }

    /// `n` slots, all taken now (none may wait).
    async fn take(limiter: &Limiter, n: usize) -> Vec<Slot<'_>> {
        let mut slots = Vec::new();
        for _ in 0..n {
            slots.push(
                limiter
                    .acquire(Some("call"))
                    .now_or_never()
                    .expect("a free slot"),
            );
        }
        slots
    }

    use futures_util::FutureExt as _;

    /// Answers `slots` after 10 ms, the `i`th with `outcome(i)`.
    async fn answer(slots: Vec<Slot<'_>>, outcome: impl Fn(usize) -> Outcome) {
        sleep(10 * MS).await;
        for (i, s) in slots.into_iter().enumerate() {
            s.done(outcome(i));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn refusals_cut_once_per_window_and_one_alone_does_not() {
        use Outcome::{Answer, Failed};
        let limiter = Limiter::new(ADAPTIVE);
        assert_eq!(limiter.now(), START);
        // One refusal in a window of 8 may be chance: no cut (and no queue: slow start doubles).
        let slots = take(&limiter, 8).await;
        answer(slots, |i| Answer(if i == 0 { 429 } else { 200 })).await;
        assert_eq!(limiter.now(), 16);
        // Refusals, a timeout and a refused connection in a window of 16: one cut, to 12. Two
        // requests of that window answer only after the cut.
        let mut slots = take(&limiter, 16).await;
        let late = slots.split_off(14);
        answer(slots, |i| match i {
            0 => Answer(429),
            1 => Answer(503),
            2 => Failed(TransportKind::Timeout),
            3 => Failed(TransportKind::Connect),
            _ => Answer(200),
        })
        .await;
        answer(take(&limiter, 2).await, |_| Answer(200)).await;
        assert_eq!(limiter.now(), 12);
        // The late ones time out: the cut already answered their window.
        answer(late, |_| Failed(TransportKind::Timeout)).await;
        answer(take(&limiter, 12).await, |_| Answer(200)).await;
        assert_eq!(limiter.now(), 13, "12 + 1: no second cut");
        // Neither a refusal of the request itself nor a TLS failure says the server is busy.
        let slots = take(&limiter, 13).await;
        answer(slots, |i| match i % 5 {
            0 => Answer(404),
            1 => Answer(400),
            2 => Answer(500),
            3 => Failed(TransportKind::Tls),
            _ => Outcome::Abandoned,
        })
        .await;
        let summary = limiter.summary();
        assert_eq!((summary.now, summary.overloads), (13, 7));
        assert_eq!((summary.lowest, summary.highest), (8, 16));
        // Broken connections, window after window: down to one, never below.
        for _ in 0..20 {
            let n = limiter.now();
            answer(take(&limiter, n).await, |_| Failed(TransportKind::Broken)).await;
        }
        assert_eq!(limiter.now(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn only_successful_json_calls_are_samples() {
        let limiter = Limiter::new(ADAPTIVE);
        limiter.acquire(None).await.done(Outcome::Answer(200));
        limiter
            .acquire(Some("call"))
            .await
            .done(Outcome::Answer(404));
        assert_eq!(limiter.summary().samples, 0);
        let s = limiter.acquire(Some("call")).await;
        sleep(7 * MS).await;
        s.done(Outcome::Answer(201));
        let summary = limiter.summary();
        assert_eq!(summary.samples, 1);
        assert_eq!(summary.base_rtt, Some(7 * MS));
        // A slot dropped without an outcome (a cancelled request) is given back, unmeasured.
        drop(take(&limiter, START).await);
        assert_eq!(take(&limiter, START).await.len(), START);
        assert_eq!(limiter.summary().samples, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_smaller_limit_holds_new_requests_until_enough_came_back() {
        let limiter = Limiter::new(Concurrency::Fixed(4));
        let mut held = take(&limiter, 4).await;
        assert!(limiter.acquire(Some("call")).now_or_never().is_none());
        limiter.set(Concurrency::Fixed(2));
        assert_eq!(limiter.now(), 2);
        // 3 of 4 back: 1 in flight, room for 1 more.
        held.truncate(1);
        let second = limiter
            .acquire(Some("call"))
            .now_or_never()
            .expect("room for a second");
        assert!(limiter.acquire(Some("call")).now_or_never().is_none());
        // Growing lets a waiting request go at once.
        let waiting = limiter.acquire(Some("call"));
        tokio::pin!(waiting);
        assert!((&mut waiting).now_or_never().is_none());
        limiter.set(Concurrency::Fixed(3));
        assert!(waiting.now_or_never().is_some());
        drop(second);
        drop(held);
        assert_eq!(take(&limiter, 3).await.len(), 3);
    }

    #[test]
    fn a_kind_is_an_api_path_without_its_ids() {
        assert_eq!(
            kind_of("/api/2.0/mlflow/runs/log-batch"),
            "/api/2.0/mlflow/runs/log-batch"
        );
        assert_eq!(
            kind_of("/api/2.0/mlflow/logged-models/m-0a1b2c3d4e5f/tags"),
            "/api/2.0/mlflow/logged-models/*/tags"
        );
        assert_eq!(
            kind_of("/api/3.0/mlflow/traces/tr-9f8e7d/info"),
            "/api/3.0/mlflow/traces/*/info"
        );
        let mut st = State::new(ADAPTIVE);
        let a = st.kind("/api/2.0/mlflow/logged-models/m-01/tags");
        assert_eq!(st.kind("/api/2.0/mlflow/logged-models/m-02/tags"), a);
        assert_ne!(st.kind("/api/2.0/mlflow/runs/search"), a);
        // Past MAX_KINDS, new kinds share the last.
        for i in 0..2 * MAX_KINDS {
            let k = st.kind(&format!("/api/2.0/mlflow/call-{}", "x".repeat(i)));
            assert!(k < MAX_KINDS);
        }
        assert_eq!(st.kinds.len(), MAX_KINDS);
    }

    #[test]
    fn few_in_flight_correct_a_base_that_is_too_low() {
        // A path that got slower for good: the old least round trip would read as a queue
        // forever; requests sent with few in flight show the new one.
        let mut st = State::new(ADAPTIVE);
        let kind = st.kind("call");
        st.record(
            0,
            Seen::Sample {
                rtt: 10 * MS,
                inflight: 5,
                kind,
            },
        );
        assert_eq!(st.base(), Some(10 * MS));
        for i in 0..CLEAN_SAMPLES as u64 {
            st.record(
                i + 1,
                Seen::Sample {
                    rtt: 50 * MS + Duration::from_millis(i),
                    inflight: 2,
                    kind,
                },
            );
        }
        assert_eq!(st.base(), Some(50 * MS));
        // Samples with more in flight only ever lower it.
        st.record(
            20,
            Seen::Sample {
                rtt: 80 * MS,
                inflight: 8,
                kind,
            },
        );
        assert_eq!(st.base(), Some(50 * MS));
        st.record(
            21,
            Seen::Sample {
                rtt: 40 * MS,
                inflight: 8,
                kind,
            },
        );
        assert_eq!(st.base(), Some(40 * MS));
    }

    #[test]
    fn clones_and_workspaces_share_one_limit() {
        let config = crate::mlflow::TrackingConfig::for_uri("http://127.0.0.1:1").unwrap();
        let c = super::super::ClientBuilder::new(config)
            .concurrency(Concurrency::Fixed(3))
            .build()
            .unwrap();
        let (clone, ws) = (c.clone(), c.in_workspace("team-a"));
        assert_eq!(ws.concurrency_now(), 3);
        clone.set_concurrency(Concurrency::Adaptive { max: 4 });
        assert_eq!(c.concurrency_now(), 4, "the start, 8, above max");
        assert_eq!(ws.concurrency_now(), 4);
        assert_eq!(
            ws.concurrency_summary().concurrency,
            Concurrency::Adaptive { max: 4 }
        );
        assert_eq!(
            super::super::Client::new(
                crate::mlflow::TrackingConfig::for_uri("http://127.0.0.1:1").unwrap()
            )
            .unwrap()
            .concurrency_summary()
            .concurrency,
            Concurrency::Adaptive { max: 32 }
        );
    }
}
