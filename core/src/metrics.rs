//! The hub's figures as Prometheus text (exposition format 0.0.4), and the
//! counters behind them that no other module owns.
//!
//! The counters are plain atomics, written on the hot path whether or not
//! the endpoint is on (they are [`crate::HubStats`] too); the text is
//! written here, by hand, only when someone scrapes. Counters bumped once
//! per packet are striped ([`Counter`]): each thread adds to a cache line
//! of its own, a scrape sums them.
//!
//! The endpoint is off by default: [`HubConfig::metrics_path`](crate::HubConfig::metrics_path)
//! serves it on the hub's listener, [`HubConfig::metrics_bind`](crate::HubConfig::metrics_bind)
//! on an address of its own.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use tokio::sync::watch;

/// How many cache lines a [`Counter`] spreads over.
const STRIPES: usize = 8;

/// One cache line's share of a counter.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Slot(AtomicU64);

/// A counter written from many threads at once: each thread adds to its
/// own slot (no cache line bounces between cores), a read sums them.
#[derive(Debug, Default)]
pub(crate) struct Counter([Slot; STRIPES]);

static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's slot in every [`Counter`].
    static STRIPE: usize = NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) % STRIPES;
}

impl Counter {
    /// Adds `n`.
    #[inline]
    pub(crate) fn add(&self, n: u64) {
        let i = STRIPE.with(|s| *s);
        self.0[i].0.fetch_add(n, Ordering::Relaxed);
    }

    /// The total so far.
    pub(crate) fn get(&self) -> u64 {
        self.0
            .iter()
            .fold(0u64, |t, s| t.wrapping_add(s.0.load(Ordering::Relaxed)))
    }
}

/// The upper bounds of [`Histogram`]'s buckets, in seconds.
pub(crate) const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// A latency histogram with fixed buckets ([`BUCKETS`], then `+Inf`).
#[derive(Debug, Default)]
pub(crate) struct Histogram {
    /// Observations per bucket (not cumulative; the last is `+Inf`).
    counts: [AtomicU64; BUCKETS.len() + 1],
    /// Sum of the observations, in nanoseconds.
    sum_ns: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub(crate) fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }
}

/// The engine's counters (one set per hub).
#[derive(Debug, Default)]
pub(crate) struct EngineCounters {
    /// Bytes read from clients: WebSocket frames, long-polling bodies.
    pub(crate) bytes_in: Counter,
    /// Bytes written to clients: WebSocket frames, long-polling bodies.
    pub(crate) bytes_out: Counter,
    /// Sessions open now on long-polling (not yet upgraded).
    pub(crate) open_polling: AtomicU64,
    /// Sessions open now on a WebSocket.
    pub(crate) open_websocket: AtomicU64,
    /// Sessions opened, by their first transport: polling, WebSocket.
    pub(crate) opened: [AtomicU64; 2],
    /// Polling sessions upgraded to a WebSocket.
    pub(crate) upgrades: AtomicU64,
    /// Sessions ended, by [`crate::engine::CloseReason::index`].
    pub(crate) closed: [AtomicU64; crate::engine::CloseReason::ALL.len()],
    /// Connections cut for a packet or body over `max_payload`.
    pub(crate) payload_cuts: AtomicU64,
    /// Requests refused for their `Origin`.
    pub(crate) origin_refusals: AtomicU64,
}

impl EngineCounters {
    /// Counts a session ending on `polling` (else a WebSocket).
    pub(crate) fn session_ended(&self, polling: bool, reason: crate::engine::CloseReason) {
        let open = if polling {
            &self.open_polling
        } else {
            &self.open_websocket
        };
        open.fetch_sub(1, Ordering::Relaxed);
        self.closed[reason.index()].fetch_add(1, Ordering::Relaxed);
    }
}

/// Socket.IO packet types as the `type` label says them, in the order of
/// [`SioCounters::received`].
pub(crate) const PACKET_TYPES: [&str; 4] = ["connect", "disconnect", "event", "ack"];

/// The Socket.IO layer's traffic counters (one set per hub).
#[derive(Debug, Default)]
pub(crate) struct SioCounters {
    /// Packets received, by [`PACKET_TYPES`] (binary events and acks count
    /// as events and acks).
    pub(crate) received: [Counter; 4],
    /// Packets sent to one socket (replies, acks, host emits to a socket).
    pub(crate) sent_direct: Counter,
    /// Packets sent as part of a broadcast (one per socket reached).
    pub(crate) sent_broadcast: Counter,
    /// Broadcasts delivered on this hub (one per line, however many get it).
    pub(crate) broadcasts: Counter,
}

/// A route serving the text (`metrics_path` on the hub's listener).
#[derive(Clone)]
pub(crate) struct Route {
    /// The path it answers (`/metrics`).
    pub(crate) path: String,
    /// Writes the text.
    pub(crate) render: Arc<dyn Fn() -> String + Send + Sync>,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route").field("path", &self.path).finish()
    }
}

/// The text's content type (exposition format 0.0.4).
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The response to a scrape.
pub(crate) fn response<B: From<String>>(text: String, head: bool) -> Response<B> {
    let body = if head { String::new() } else { text };
    let mut resp = Response::new(B::from(body));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    resp
}

/// Serves `route` on a listener of its own until `stop` turns true:
/// `GET route.path` answers the text, anything else 404.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    route: Route,
    mut stop: watch::Receiver<bool>,
) {
    use hyper_util::rt::TokioIo;
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::debug!("metrics listener: accept failed: {e}");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(100)) => continue,
                        () = crate::net::until_stopped(&mut stop) => return,
                    }
                }
            },
            () = crate::net::until_stopped(&mut stop) => return,
        };
        let route = route.clone();
        let mut conn_stop = stop.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let route = route.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(&route, &req)) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!("metrics connection: {e}");
                    }
                }
                () = crate::net::until_stopped(&mut conn_stop) => {}
            }
        });
    }
}

fn answer<T>(route: &Route, req: &Request<T>) -> Response<http_body_util::Full<Bytes>> {
    let get = req.method() == Method::GET || req.method() == Method::HEAD;
    if get && req.uri().path() == route.path {
        let text = (route.render)();
        let body = if req.method() == Method::HEAD {
            Bytes::new()
        } else {
            Bytes::from(text)
        };
        let mut resp = Response::new(http_body_util::Full::new(body));
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        return resp;
    }
    let mut resp = Response::new(http_body_util::Full::new(Bytes::from_static(b"not found")));
    *resp.status_mut() = StatusCode::NOT_FOUND;
    resp
}

/// Writes metric families in the text format.
#[derive(Debug, Default)]
pub(crate) struct Text {
    out: String,
}

impl Text {
    /// Starts a family: its `HELP` and `TYPE` lines.
    pub(crate) fn family(&mut self, name: &str, kind: &str, help: &str) -> &mut Self {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
        self
    }

    /// One sample without labels.
    pub(crate) fn value(&mut self, name: &str, v: impl std::fmt::Display) -> &mut Self {
        let _ = writeln!(self.out, "{name} {v}");
        self
    }

    /// One sample with one label.
    pub(crate) fn labelled(
        &mut self,
        name: &str,
        label: &str,
        value: &str,
        v: impl std::fmt::Display,
    ) -> &mut Self {
        let _ = write!(self.out, "{name}{{{label}=\"");
        escape(&mut self.out, value);
        let _ = writeln!(self.out, "\"}} {v}");
        self
    }

    /// A counter family with one sample.
    pub(crate) fn counter(&mut self, name: &str, help: &str, v: u64) -> &mut Self {
        self.family(name, "counter", help).value(name, v)
    }

    /// A gauge family with one sample.
    pub(crate) fn gauge(&mut self, name: &str, help: &str, v: impl std::fmt::Display) -> &mut Self {
        self.family(name, "gauge", help).value(name, v)
    }

    /// The samples of a histogram (its family started already), with one
    /// label.
    pub(crate) fn histogram(&mut self, name: &str, label: &str, value: &str, h: &Histogram) {
        let mut cumulative = 0u64;
        for (i, c) in h.counts.iter().enumerate() {
            cumulative += c.load(Ordering::Relaxed);
            let le = BUCKETS
                .get(i)
                .map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
            let _ = write!(self.out, "{name}_bucket{{{label}=\"");
            escape(&mut self.out, value);
            let _ = writeln!(self.out, "\",le=\"{le}\"}} {cumulative}");
        }
        let sum = h.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        self.labelled(&format!("{name}_sum"), label, value, sum);
        self.labelled(&format!("{name}_count"), label, value, cumulative);
    }

    /// The text.
    pub(crate) fn finish(self) -> String {
        self.out
    }
}

/// A label value as the text format wants it: `\`, `"` and newlines
/// escaped.
fn escape(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_striped_counter_sums_every_thread() {
        let c = Arc::new(Counter::default());
        let threads: Vec<_> = (0..12)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        c.add(2);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(c.get(), 24_000);
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_in_inf() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(30));
        h.observe(Duration::from_secs(60));
        let mut t = Text::default();
        t.family("x_seconds", "histogram", "help");
        t.histogram("x_seconds", "hook", "con\"nect", &h);
        let text = t.finish();
        assert!(text.contains("x_seconds_bucket{hook=\"con\\\"nect\",le=\"0.001\"} 1\n"));
        assert!(text.contains("x_seconds_bucket{hook=\"con\\\"nect\",le=\"0.05\"} 2\n"));
        assert!(text.contains("x_seconds_bucket{hook=\"con\\\"nect\",le=\"10\"} 2\n"));
        assert!(text.contains("x_seconds_bucket{hook=\"con\\\"nect\",le=\"+Inf\"} 3\n"));
        assert!(text.contains("x_seconds_count{hook=\"con\\\"nect\"} 3\n"));
        assert!(text.contains("x_seconds_sum{hook=\"con\\\"nect\"} 60.0305\n"));
    }
}
