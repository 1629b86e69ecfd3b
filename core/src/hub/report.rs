//! The hub's figures: [`HubStats`] for the host, and the same counters
//! (with a few breakdowns more) as Prometheus text for `/metrics`.

use std::sync::atomic::Ordering::Relaxed;

use super::HubStats;
use super::actions::Core;
use crate::chat::handler::LOBBY;
use crate::engine::CloseReason;
use crate::metrics::{PACKET_TYPES, Text};

impl Core {
    /// The counters, with `tasks` alive on the hub's runtime.
    pub(crate) fn stats(&self, tasks: usize) -> HubStats {
        let shared = &self.shared;
        let st = &shared.stats;
        let c = &shared.counters;
        let t = &c.traffic;
        let e = self.engine.counters();
        let cluster = shared.cluster.get();
        HubStats {
            sockets: self.socket_count(),
            packets_dropped: c.dropped.load(Relaxed),
            events_dropped: st.events_dropped.load(Relaxed),
            flood_disconnects: st.flood_disconnects.load(Relaxed),
            slow_consumer_disconnects: st.slow_disconnects.load(Relaxed),
            connections_refused: st.connections_refused.load(Relaxed),
            cluster_messages_lost: cluster.map_or(0, |c| c.lost()),
            tasks,
            recovered: c.recovered.load(Relaxed),
            recovery_misses: c.recovery_misses.load(Relaxed),
            connections_polling: e.open_polling.load(Relaxed),
            connections_websocket: e.open_websocket.load(Relaxed),
            packets_received: t.received.iter().map(|r| r.get()).sum(),
            events_received: t.received[2].get(),
            packets_sent: t.sent_direct.get() + t.sent_broadcast.get(),
            broadcasts: t.broadcasts.get(),
            bytes_received: e.bytes_in.get(),
            bytes_sent: e.bytes_out.get(),
            payload_disconnects: e.payload_cuts.load(Relaxed) + c.payload_cuts.load(Relaxed),
            origin_refusals: e.origin_refusals.load(Relaxed),
            cluster_published: cluster.map_or(0, |c| c.published()),
            cluster_received: cluster.map_or(0, |c| c.received()),
            cluster_down_ms: cluster
                .and_then(|c| c.down_for())
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            ..self.recovery_sizes()
        }
    }

    /// The Prometheus text (format 0.0.4): every figure of [`HubStats`]
    /// and its breakdowns. `chat`: the chat's namespaces (their lobby is
    /// not a room).
    pub(crate) fn metrics_text(&self, tasks: usize, chat: &[String]) -> String {
        let s = self.stats(tasks);
        let shared = &self.shared;
        let c = &shared.counters;
        let e = self.engine.counters();
        let mut t = Text::default();

        t.family(
            "chathub_connections",
            "gauge",
            "Engine.IO connections open now, by transport.",
        )
        .labelled(
            "chathub_connections",
            "transport",
            "polling",
            s.connections_polling,
        )
        .labelled(
            "chathub_connections",
            "transport",
            "websocket",
            s.connections_websocket,
        );
        t.family(
            "chathub_connections_opened_total",
            "counter",
            "Engine.IO connections opened, by their first transport.",
        )
        .labelled(
            "chathub_connections_opened_total",
            "transport",
            "polling",
            e.opened[0].load(Relaxed),
        )
        .labelled(
            "chathub_connections_opened_total",
            "transport",
            "websocket",
            e.opened[1].load(Relaxed),
        );
        t.counter(
            "chathub_upgrades_total",
            "Long-polling connections upgraded to a WebSocket.",
            e.upgrades.load(Relaxed),
        );
        t.family(
            "chathub_connections_closed_total",
            "counter",
            "Engine.IO connections ended, by reason.",
        );
        for r in CloseReason::ALL {
            t.labelled(
                "chathub_connections_closed_total",
                "reason",
                r.text(),
                e.closed[r.index()].load(Relaxed),
            );
        }

        let mut namespaces: Vec<_> = self.sio().namespaces().collect();
        namespaces.sort_by(|a, b| a.path.cmp(&b.path));
        t.family(
            "chathub_sockets",
            "gauge",
            "Sockets connected now, by namespace.",
        );
        for ns in &namespaces {
            t.labelled("chathub_sockets", "namespace", &ns.path, ns.len());
        }
        t.family(
            "chathub_rooms",
            "gauge",
            "Rooms with a socket of this hub in them now, by namespace (the chat's lobby is not one).",
        );
        for ns in &namespaces {
            let (mut rooms, lobby) = ns.room_count(LOBBY);
            if lobby && chat.contains(&ns.path) {
                rooms -= 1;
            }
            t.labelled("chathub_rooms", "namespace", &ns.path, rooms);
        }

        t.family(
            "chathub_packets_received_total",
            "counter",
            "Socket.IO packets received from clients, by type.",
        );
        for (i, kind) in PACKET_TYPES.iter().enumerate() {
            t.labelled(
                "chathub_packets_received_total",
                "type",
                kind,
                c.traffic.received[i].get(),
            );
        }
        t.family(
            "chathub_packets_sent_total",
            "counter",
            "Socket.IO packets queued for clients: to one socket, or as part of a broadcast (one per socket reached).",
        )
        .labelled(
            "chathub_packets_sent_total",
            "kind",
            "direct",
            c.traffic.sent_direct.get(),
        )
        .labelled(
            "chathub_packets_sent_total",
            "kind",
            "broadcast",
            c.traffic.sent_broadcast.get(),
        );
        t.counter(
            "chathub_broadcasts_total",
            "Broadcasts delivered on this hub (one per line, however many sockets get it).",
            s.broadcasts,
        );
        t.counter(
            "chathub_received_bytes_total",
            "Bytes read from clients (WebSocket frames, long-polling bodies).",
            s.bytes_received,
        );
        t.counter(
            "chathub_sent_bytes_total",
            "Bytes written to clients (WebSocket frames, long-polling bodies).",
            s.bytes_sent,
        );

        t.family(
            "chathub_dropped_total",
            "counter",
            "What the hub dropped, by reason: client events over the flood limits, packets for a socket whose queue was full.",
        )
        .labelled("chathub_dropped_total", "reason", "flood", s.events_dropped)
        .labelled(
            "chathub_dropped_total",
            "reason",
            "slow consumer",
            s.packets_dropped,
        );
        t.family(
            "chathub_cuts_total",
            "counter",
            "Sockets or connections the hub cut, by reason.",
        )
        .labelled("chathub_cuts_total", "reason", "flood", s.flood_disconnects)
        .labelled(
            "chathub_cuts_total",
            "reason",
            "slow consumer",
            s.slow_consumer_disconnects,
        )
        .labelled(
            "chathub_cuts_total",
            "reason",
            "payload",
            s.payload_disconnects,
        );
        t.family(
            "chathub_refused_total",
            "counter",
            "Requests and connections refused, by reason.",
        )
        .labelled(
            "chathub_refused_total",
            "reason",
            "origin",
            s.origin_refusals,
        )
        .labelled(
            "chathub_refused_total",
            "reason",
            "connections per ip",
            s.connections_refused,
        );

        t.family(
            "chathub_hook_duration_seconds",
            "histogram",
            "How long the host's hooks took to decide (timeouts included).",
        );
        t.histogram(
            "chathub_hook_duration_seconds",
            "hook",
            "connect",
            &shared.connect_hook_time,
        );
        t.histogram(
            "chathub_hook_duration_seconds",
            "hook",
            "login",
            &shared.login_hook_time,
        );

        let cluster = shared.cluster.get();
        t.gauge(
            "chathub_cluster_enabled",
            "1 when the hub is joined to others through Redis.",
            u8::from(cluster.is_some()),
        );
        t.gauge(
            "chathub_cluster_up",
            "1 while Redis is reachable (0 without Redis, or while it is away).",
            u8::from(cluster.is_some_and(|c| c.is_up())),
        );
        t.gauge(
            "chathub_cluster_down_seconds",
            "How long Redis has been away (0 while it is up).",
            s.cluster_down_ms as f64 / 1000.0,
        );
        t.counter(
            "chathub_cluster_published_total",
            "Commands sent to Redis (publishes, stream appends, sessions).",
            s.cluster_published,
        );
        t.counter(
            "chathub_cluster_received_total",
            "Pub/sub messages received from Redis (heartbeats included).",
            s.cluster_received,
        );
        t.counter(
            "chathub_cluster_lost_total",
            "Messages for the other hubs lost while Redis was unavailable.",
            s.cluster_messages_lost,
        );

        t.family(
            "chathub_recovery_total",
            "counter",
            "Clients that asked to recover their session: recovered (hit) or started fresh (miss).",
        )
        .labelled("chathub_recovery_total", "result", "hit", s.recovered)
        .labelled(
            "chathub_recovery_total",
            "result",
            "miss",
            s.recovery_misses,
        );
        t.gauge(
            "chathub_recovery_kept_packets",
            "Broadcasts kept for recovery now, over all namespaces.",
            s.recovery_packets,
        );
        t.gauge(
            "chathub_recovery_kept_bytes",
            "Bytes of the broadcasts kept for recovery now.",
            s.recovery_bytes,
        );
        t.gauge(
            "chathub_recovery_kept_sessions",
            "Dropped sockets kept for recovery now.",
            s.recovery_sessions,
        );
        t.gauge(
            "chathub_tasks",
            "Tasks alive on the hub's runtime now.",
            s.tasks,
        );
        t.finish()
    }
}
