//! Namespaces the host owns (`PROTOCOL.md`, "Namespaces the host owns"):
//! plain Socket.IO, no chat rule. Every event, with its arguments, binary
//! attachments and ack, goes to the host as a [`HubEvent::Custom`]; the
//! host emits, moves sockets between any number of rooms and disconnects
//! them through the [`Hub`](crate::Hub).

use std::sync::Arc;

use crate::engine::Step;
use crate::events::{ConnectEvent, CustomEvent, DisconnectEvent, EventKinds, HubEvent, Transport};
use crate::hooks::ConnectRequest;
use crate::hub::shared::{Guard, Shared, Stats, Verdict as Limit, payload_value};
use crate::socketio::{
    ConnectRequest as SioConnect, Event, Namespace, NsHandler, Resumed, Socket, Verdict,
};

/// What a host namespace keeps per socket: its flood state.
#[derive(Debug)]
pub(crate) struct HostSocket {
    pub(crate) guard: Guard,
}

/// The handler of one host namespace.
#[derive(Debug)]
pub(crate) struct HostNs {
    shared: Arc<Shared>,
}

impl HostNs {
    pub(crate) fn new(shared: Arc<Shared>) -> HostNs {
        HostNs { shared }
    }
}

impl NsHandler for HostNs {
    fn connect(&self, ns: &Arc<Namespace>, req: SioConnect<'_>) -> Verdict {
        self.shared.connect_verdict(|| ConnectRequest {
            ns: ns.path.clone(),
            sid: req.id.to_string(),
            auth: payload_value(req.auth, &[]),
            remote_addr: req.handshake.remote,
            headers: req.handshake.headers(),
        })
    }

    fn connected(&self, socket: &Arc<Socket>, auth: Option<&str>, resumed: Option<Resumed>) {
        let _ = socket.ext.set(Box::new(HostSocket {
            guard: self.shared.guard(socket.handshake().remote),
        }));
        let events = &self.shared.events;
        if events.wants(EventKinds::CONNECT) {
            events.publish(HubEvent::Connect(ConnectEvent {
                ns: socket.ns.path.clone(),
                sid: socket.id.to_string(),
                auth: payload_value(auth, &[]),
                remote_addr: socket.handshake().remote,
                transport: match socket.session.transport() {
                    crate::engine::Transport::Polling => Transport::Polling,
                    crate::engine::Transport::Websocket => Transport::Websocket,
                },
                recovered: resumed.is_some(),
                headers: socket.handshake().headers(),
            }));
        }
    }

    fn event(&self, socket: &Arc<Socket>, ev: Event) -> Step {
        let Some(host) = socket.ext::<HostSocket>() else {
            return Step::Next;
        };
        let stats = &self.shared.stats;
        match host.guard.admit(ev.size()) {
            Limit::Pass => {}
            Limit::Drop { warn, limit } => {
                Stats::add(&stats.events_dropped, 1);
                if warn {
                    self.shared.limit_event(socket, None, limit, false);
                }
                return Step::Next;
            }
            Limit::Cut { limit, first } => {
                Stats::add(&stats.events_dropped, 1);
                if first {
                    Stats::add(&stats.flood_disconnects, 1);
                    self.shared.limit_event(socket, None, limit, true);
                    socket.disconnect("flood");
                }
                return Step::Next;
            }
        }
        let text = std::str::from_utf8(&ev.data).unwrap_or("");
        let name = crate::json::array(text).and_then(|items| {
            items
                .first()
                .map(|f| crate::json::string(f).unwrap_or_else(|| f.get().to_owned()))
        });
        let Some(name) = name else { return Step::Next };
        if name.contains('\0') {
            tracing::debug!(sid = %socket.id, "dropping an event whose name holds a NUL character");
            return Step::Next;
        }
        let events = &self.shared.events;
        if !events.wants_custom(&name) {
            return Step::Next;
        }
        match crate::chat::handler::custom_args(text, &ev.bins) {
            Ok(args) => events.publish(HubEvent::Custom(CustomEvent {
                ns: socket.ns.path.clone(),
                sid: socket.id.to_string(),
                name: None,
                event: name,
                args,
                ack: ev.ack.map(|id| crate::chat::handler::host_ack(socket, id)),
            })),
            Err(e) => tracing::debug!(sid = %socket.id, "dropping an event: {e}"),
        }
        Step::Next
    }

    fn disconnect(&self, socket: &Arc<Socket>, reason: &'static str) {
        let reason = socket
            .ext::<HostSocket>()
            .and_then(|h| h.guard.ended_by())
            .unwrap_or(reason);
        if reason == crate::engine::CloseReason::SlowConsumer.text() {
            Stats::add(&self.shared.stats.slow_disconnects, 1);
            self.shared.limit_event(socket, None, "slow consumer", true);
        }
        let events = &self.shared.events;
        if events.wants(EventKinds::DISCONNECT) {
            events.publish(HubEvent::Disconnect(DisconnectEvent {
                ns: socket.ns.path.clone(),
                sid: socket.id.to_string(),
                name: None,
                room: None,
                reason: reason.to_owned(),
            }));
        }
    }
}
