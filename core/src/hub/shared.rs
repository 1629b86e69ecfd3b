//! What every namespace of a hub shares: the host's hooks and event bus,
//! the counters, the flood limits (per socket and per address) and the
//! link to the other hubs.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures_util::FutureExt;

use crate::config::{FloodLimits, IpLimits};
use crate::events::{EventBus, EventKinds, HubEvent, LimitEvent};
use crate::hooks::{ConnectHook, ConnectRequest, LoginHook};
use crate::limits::{Admit, Limiter};
use crate::metrics::Histogram;
use crate::socketio::{Counters, Socket};
use crate::value::Value;

/// Counters of what the hub refused or lost; see [`crate::HubStats`].
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) events_dropped: AtomicU64,
    pub(crate) flood_disconnects: AtomicU64,
    pub(crate) slow_disconnects: AtomicU64,
    pub(crate) connections_refused: Arc<AtomicU64>,
}

impl Stats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Hub-wide state shared by every namespace and socket.
pub(crate) struct Shared {
    pub(crate) limits: crate::chat::ChatLimits,
    pub(crate) flood: FloodLimits,
    pub(crate) stats: Stats,
    pub(crate) counters: Arc<Counters>,
    pub(crate) events: Arc<EventBus>,
    pub(crate) connect_hook: RwLock<Option<ConnectHook>>,
    pub(crate) login_hook: RwLock<Option<LoginHook>>,
    pub(crate) hook_timeout: Duration,
    /// How long the connect hook took (see [`crate::metrics`]).
    pub(crate) connect_hook_time: Arc<Histogram>,
    /// How long the login hook took.
    pub(crate) login_hook_time: Arc<Histogram>,
    /// Set when shutdown begins: new sockets are refused.
    pub(crate) closing: AtomicBool,
    /// The link to the other hubs, when a Redis URL is configured.
    pub(crate) cluster: std::sync::OnceLock<Arc<crate::cluster::Cluster>>,
    /// Each address's share of the aggregate limits.
    ips: IpTable,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn new(config: &crate::HubConfig) -> Shared {
        Shared {
            limits: config.limits,
            flood: config.flood,
            stats: Stats::default(),
            counters: Arc::new(Counters::default()),
            events: Arc::new(EventBus::new(config.event_queue_capacity)),
            connect_hook: RwLock::new(None),
            login_hook: RwLock::new(None),
            hook_timeout: config.hook_timeout,
            connect_hook_time: Arc::default(),
            login_hook_time: Arc::default(),
            closing: AtomicBool::new(false),
            cluster: std::sync::OnceLock::new(),
            ips: IpTable::new(config.ip_limits),
        }
    }

    /// Whether shutdown has begun.
    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// The connect hook's verdict on a socket (none set: accepted).
    pub(crate) fn connect_verdict(
        &self,
        req: impl FnOnce() -> ConnectRequest,
    ) -> crate::socketio::Verdict {
        use crate::socketio::Verdict;
        if self.is_closing() {
            return Verdict::Now(Err("the server is shutting down".into()));
        }
        let hook = self
            .connect_hook
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match hook {
            None => Verdict::Now(Ok(())),
            Some(hook) => Verdict::Later(Box::pin(run_hook(
                hook(req()),
                self.hook_timeout,
                "connect",
                self.connect_hook_time.clone(),
            ))),
        }
    }

    /// The guard of a new socket: its flood limits and its address's share.
    pub(crate) fn guard(&self, remote: Option<SocketAddr>) -> Guard {
        let now = Instant::now();
        Guard {
            own: Mutex::new(Own {
                limiter: Limiter::new(&self.flood, now),
                max_strikes: self.flood.strikes,
                shared_drops: 0,
                window: now,
            }),
            ip: remote.and_then(|a| self.ips.join(a.ip())),
            ended_by: Mutex::new(None),
        }
    }

    /// Tells the host that a socket went over a limit.
    pub(crate) fn limit_event(
        &self,
        socket: &Socket,
        name: Option<String>,
        limit: &str,
        disconnected: bool,
    ) {
        if self.events.wants(EventKinds::LIMIT) {
            self.events.publish(HubEvent::Limit(LimitEvent {
                ns: socket.ns.path.clone(),
                sid: socket.id.to_string(),
                name,
                limit: limit.to_owned(),
                disconnected,
            }));
        }
    }
}

/// The aggregate limiters of the addresses with sockets now.
struct IpTable {
    limits: IpLimits,
    map: Mutex<HashMap<IpAddr, Arc<IpShare>>>,
}

/// One address's aggregate limiter, shared by its sockets.
pub(crate) struct IpShare {
    ip: IpAddr,
    limiter: Mutex<Limiter>,
}

impl IpTable {
    fn new(limits: IpLimits) -> IpTable {
        IpTable {
            limits,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn join(&self, ip: IpAddr) -> Option<Arc<IpShare>> {
        if self.limits.is_off() {
            return None;
        }
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        // Forget addresses whose sockets are all gone.
        if map.len() > 64 && map.len().is_power_of_two() {
            map.retain(|_, s| Arc::strong_count(s) > 1);
        }
        let share = map.entry(ip).or_insert_with(|| {
            Arc::new(IpShare {
                ip,
                limiter: Mutex::new(Limiter::new(&self.limits.as_flood(), Instant::now())),
            })
        });
        if Arc::strong_count(share) == 1 {
            // Its sockets were all gone: start its budget afresh.
            *share.limiter.lock().unwrap_or_else(|e| e.into_inner()) =
                Limiter::new(&self.limits.as_flood(), Instant::now());
        }
        Some(share.clone())
    }
}

impl std::fmt::Debug for IpShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IpShare").field("ip", &self.ip).finish()
    }
}

/// A socket's flood state: its own limits, its address's aggregate share,
/// and why the hub ended it (when it did).
#[derive(Debug)]
pub(crate) struct Guard {
    own: Mutex<Own>,
    ip: Option<Arc<IpShare>>,
    ended_by: Mutex<Option<&'static str>>,
}

/// How long drops for an address's share count against a socket.
const SHARED_WINDOW: Duration = Duration::from_secs(5);

/// A socket's own limiter, and its drops for its address's share within
/// the current window (`SHARED_WINDOW`).
#[derive(Debug)]
struct Own {
    limiter: Limiter,
    max_strikes: u32,
    shared_drops: u32,
    window: Instant,
}

/// What to do with an incoming event, after the limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Handle it.
    Pass,
    /// Drop it; when `warn`, tell the sender that `limit` was hit.
    Drop { warn: bool, limit: &'static str },
    /// Drop it and disconnect the sender (first time only: `first`).
    Cut { limit: &'static str, first: bool },
}

impl Guard {
    /// Applies the limits to an event of `size` bytes: the socket's own
    /// (`strikes` drops in a row cut it), then its address's share (a
    /// socket whose events are dropped for it `strikes` times within five
    /// seconds is cut, however many of its events pass between: it is one
    /// of those flooding through many sockets; someone sending a line now
    /// and then never gets there).
    pub(crate) fn admit(&self, size: usize) -> Verdict {
        let now = Instant::now();
        let verdict = {
            let mut own = self.own.lock().unwrap_or_else(|e| e.into_inner());
            if own.limiter.is_off() && self.ip.is_none() {
                return Verdict::Pass;
            }
            if let Some(limit) = own.limiter.over(now, size) {
                own.limiter.strike(now, limit)
            } else if let Some(over) = self.ip.as_ref().and_then(|s| {
                s.limiter
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .over(now, size)
            }) {
                let limit = aggregate_name(over);
                if now.saturating_duration_since(own.window) >= SHARED_WINDOW {
                    own.window = now;
                    own.shared_drops = 0;
                }
                own.shared_drops += 1;
                if own.max_strikes > 0 && own.shared_drops >= own.max_strikes {
                    Admit::Disconnect { limit }
                } else {
                    match own.limiter.strike(now, limit) {
                        // Only the count within the second cuts for this.
                        Admit::Disconnect { .. } => Admit::Drop { warn: false, limit },
                        other => other,
                    }
                }
            } else {
                own.limiter.take(size);
                if let Some(share) = &self.ip {
                    share
                        .limiter
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .take(size);
                }
                Admit::Yes
            }
        };
        self.verdict(verdict)
    }

    fn verdict(&self, admit: Admit) -> Verdict {
        match admit {
            Admit::Yes => Verdict::Pass,
            Admit::Drop { warn, limit } => Verdict::Drop { warn, limit },
            Admit::Disconnect { limit } => {
                let first = self.mark_ended("flood");
                Verdict::Cut { limit, first }
            }
        }
    }

    /// Records why the hub ends this socket; false if a reason was there.
    pub(crate) fn mark_ended(&self, why: &'static str) -> bool {
        let mut e = self.ended_by.lock().unwrap_or_else(|e| e.into_inner());
        if e.is_some() {
            return false;
        }
        *e = Some(why);
        true
    }

    /// Why the hub ended it, if it did.
    pub(crate) fn ended_by(&self) -> Option<&'static str> {
        *self.ended_by.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn aggregate_name(limit: &'static str) -> &'static str {
    match limit {
        "events per second" => "events per second from this address",
        "bytes per second" => "bytes per second from this address",
        other => other,
    }
}

/// Runs a host hook with the timeout, turning a panic or a timeout into a
/// refusal; how long it took goes into `times`.
pub(crate) async fn run_hook(
    fut: crate::hooks::HookFuture,
    timeout: Duration,
    what: &'static str,
    times: Arc<Histogram>,
) -> Result<(), String> {
    let started = Instant::now();
    let outcome = tokio::time::timeout(timeout, AssertUnwindSafe(fut).catch_unwind()).await;
    times.observe(started.elapsed());
    match outcome {
        Ok(Ok(Err(reason))) if reason.trim().is_empty() => Err(crate::hooks::REFUSED.into()),
        Ok(Ok(result)) => result,
        Ok(Err(_panic)) => {
            tracing::error!("the {what} hook panicked; refusing");
            Err(format!("the {what} hook failed"))
        }
        Err(_) => {
            tracing::warn!("the {what} hook took longer than {timeout:?}; refusing");
            Err(format!("the {what} hook timed out"))
        }
    }
}

/// Reads a Socket.IO payload (`auth`, arguments) into a [`Value`]; `{}`
/// when absent or unreadable.
pub(crate) fn payload_value(text: Option<&str>, bins: &[bytes::Bytes]) -> Value {
    text.and_then(crate::json::value)
        .and_then(|j| Value::from_json_with_placeholders(j, bins).ok())
        .unwrap_or_else(|| Value::Object(Default::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refusal_without_a_reason_gets_the_hubs_text() {
        let refuse = |r: &str| -> crate::hooks::HookFuture {
            let r = r.to_owned();
            Box::pin(async move { Err(r) })
        };
        let t = Duration::from_secs(1);
        assert_eq!(
            run_hook(refuse(""), t, "connect", Default::default()).await,
            Err("refused".into())
        );
        assert_eq!(
            run_hook(refuse("  "), t, "connect", Default::default()).await,
            Err("refused".into())
        );
        assert_eq!(
            run_hook(refuse("no"), t, "connect", Default::default()).await,
            Err("no".into())
        );
        assert_eq!(
            run_hook(Box::pin(async { Ok(()) }), t, "connect", Default::default()).await,
            Ok(())
        );
    }

    fn shared(ip: IpLimits) -> Shared {
        Shared::new(&crate::HubConfig {
            ip_limits: ip,
            ..Default::default()
        })
    }

    #[test]
    fn an_address_flooding_through_many_sockets_gets_them_cut() {
        let s = shared(IpLimits {
            events_per_sec: 10,
            event_burst: 10,
            ..IpLimits::off()
        });
        let addr: SocketAddr = "203.0.113.1:1000".parse().unwrap();
        let guards: Vec<Guard> = (0..5).map(|_| s.guard(Some(addr))).collect();
        let other = s.guard(Some("198.51.100.1:1".parse().unwrap()));
        let mut cut = vec![false; guards.len()];
        for round in 0..100 {
            for (i, g) in guards.iter().enumerate() {
                if let Verdict::Cut { first: true, limit } = g.admit(10) {
                    assert_eq!(limit, "events per second from this address");
                    cut[i] = true;
                }
            }
            // Another address is not affected (within its own share).
            if round < 10 {
                assert_eq!(other.admit(10), Verdict::Pass, "round {round}");
            }
        }
        assert!(
            cut.iter().all(|c| *c),
            "every flooding socket is cut: {cut:?}"
        );
    }

    #[test]
    fn sockets_of_one_address_within_its_share_pass() {
        let s = shared(IpLimits::default());
        let addr: SocketAddr = "203.0.113.2:1000".parse().unwrap();
        let guards: Vec<Guard> = (0..50).map(|_| s.guard(Some(addr))).collect();
        // 50 users saying one line each, ten times: 500 events, the burst.
        for _ in 0..10 {
            for g in &guards {
                assert_eq!(g.admit(100), Verdict::Pass);
            }
        }
    }
}
