//! The host's actions on sockets, on this hub and (through the cluster) on
//! the others: emits, moves between rooms, disconnects, listings.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;

use crate::chat::Scope;
use crate::chat::handler::{ChatSocket, LOBBY};
use crate::cluster::{LocalOps, WireTarget};
use crate::engine::{Engine, Pushed};
use crate::error::ActionError;
use crate::hub::shared::Shared;
use crate::socketio::{Namespace, Sio, Socket, packet};
use crate::value::Value;

/// Where a host emit goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One socket.
    Socket {
        /// Its namespace.
        ns: String,
        /// Its id.
        sid: String,
    },
    /// Every socket in a room (a chat room, or a room of a host namespace).
    Room {
        /// The namespace.
        ns: String,
        /// The room.
        room: String,
    },
    /// Every socket in the lobby (in no room) of a chat namespace.
    Lobby {
        /// The namespace.
        ns: String,
    },
    /// Every socket of the namespace.
    Namespace {
        /// The namespace.
        ns: String,
    },
    /// Every socket in any of `rooms` (each once; all of the namespace
    /// when `rooms` is empty) but those in `except`: socket ids, or rooms
    /// whose members are left out (socket.io's `to([…]).except(…)`).
    Rooms {
        /// The namespace.
        ns: String,
        /// The rooms; empty: the whole namespace.
        rooms: Vec<String>,
        /// Socket ids and rooms left out.
        except: Vec<String>,
    },
}

impl Target {
    /// One socket.
    pub fn socket(ns: impl Into<String>, sid: impl Into<String>) -> Target {
        Target::Socket {
            ns: ns.into(),
            sid: sid.into(),
        }
    }

    /// A room.
    pub fn room(ns: impl Into<String>, room: impl Into<String>) -> Target {
        Target::Room {
            ns: ns.into(),
            room: room.into(),
        }
    }

    /// The lobby of a chat namespace.
    pub fn lobby(ns: impl Into<String>) -> Target {
        Target::Lobby { ns: ns.into() }
    }

    /// The whole namespace.
    pub fn namespace(ns: impl Into<String>) -> Target {
        Target::Namespace { ns: ns.into() }
    }

    /// Every socket in any of `rooms` (all of the namespace when empty)
    /// but the sockets (by id) and rooms in `except`.
    pub fn rooms(
        ns: impl Into<String>,
        rooms: impl IntoIterator<Item = impl Into<String>>,
        except: impl IntoIterator<Item = impl Into<String>>,
    ) -> Target {
        Target::Rooms {
            ns: ns.into(),
            rooms: rooms.into_iter().map(Into::into).collect(),
            except: except.into_iter().map(Into::into).collect(),
        }
    }

    /// The namespace targeted.
    pub fn ns(&self) -> &str {
        match self {
            Target::Socket { ns, .. }
            | Target::Room { ns, .. }
            | Target::Lobby { ns }
            | Target::Namespace { ns }
            | Target::Rooms { ns, .. } => ns,
        }
    }
}

/// A socket in a listing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub struct MemberInfo {
    /// The socket id.
    pub sid: String,
    /// Its login name, if it logged in (always `None` in host namespaces).
    pub name: Option<String>,
    /// The hub it is on (its node id in the cluster), `None` without Redis
    /// (then left out of the JSON the C and Node faces give).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub: Option<String>,
}

/// A room in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RoomInfo {
    /// The room name.
    pub name: String,
    /// Who is in it, by name then id.
    pub members: Vec<MemberInfo>,
}

/// Who is where in one namespace. Rooms appear while they have members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct NamespaceListing {
    /// The namespace.
    pub ns: String,
    /// The sockets in no room, by name then id (in a host namespace: the
    /// sockets in no room at all).
    pub lobby: Vec<MemberInfo>,
    /// The rooms, by name.
    pub rooms: Vec<RoomInfo>,
}

impl NamespaceListing {
    /// Every member of a chat namespace, lobby and rooms (in a host
    /// namespace a socket is counted once per room).
    pub fn socket_count(&self) -> usize {
        self.lobby.len() + self.rooms.iter().map(|r| r.members.len()).sum::<usize>()
    }
}

/// The hub's sockets, as the host's actions see them.
pub(crate) struct Core {
    pub(crate) engine: Engine<Sio>,
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core").finish_non_exhaustive()
    }
}

fn not_found(ns: &str, sid: &str) -> ActionError {
    ActionError::SocketNotFound {
        ns: ns.to_owned(),
        sid: sid.to_owned(),
    }
}

impl Core {
    pub(crate) fn sio(&self) -> &Sio {
        self.engine.handler()
    }

    fn namespace(&self, ns: &str) -> Result<&Arc<Namespace>, ActionError> {
        self.sio()
            .namespace(ns)
            .ok_or_else(|| ActionError::UnknownNamespace(ns.to_owned()))
    }

    fn socket(&self, ns: &str, sid: &str) -> Result<Arc<Socket>, ActionError> {
        self.namespace(ns)?
            .socket(sid)
            .filter(|s| s.is_connected())
            .ok_or_else(|| not_found(ns, sid))
    }

    /// Sockets connected now, over all namespaces.
    pub(crate) fn socket_count(&self) -> usize {
        self.sio().namespaces().map(|n| n.len()).sum()
    }

    /// What recovery keeps now, over all namespaces (the other fields
    /// zero).
    pub(crate) fn recovery_sizes(&self) -> crate::HubStats {
        let mut st = crate::HubStats::default();
        for r in self.sio().namespaces().filter_map(|n| n.recovery.as_ref()) {
            let (packets, bytes) = r.log.lock().unwrap_or_else(|e| e.into_inner()).size();
            st.recovery_packets += packets;
            st.recovery_bytes += bytes;
            st.recovery_sessions += r.saved_len();
        }
        st
    }

    /// Emits on this hub, then (unless the one socket targeted is here)
    /// on the others.
    pub(crate) fn emit(
        &self,
        target: Target,
        event: &str,
        args: &[Value],
    ) -> Result<(), ActionError> {
        let (ns, to) = match target {
            Target::Socket { ns, sid } => (ns, WireTarget::Socket(sid)),
            Target::Room { ns, room } => (ns, WireTarget::Room(room)),
            Target::Lobby { ns } => (ns, WireTarget::Lobby),
            Target::Namespace { ns } => (ns, WireTarget::Namespace),
            Target::Rooms { ns, rooms, except } => (ns, WireTarget::Rooms { rooms, except }),
        };
        let mut bins = Vec::new();
        let json = packet::args_json(args, &mut bins);
        let here = self.emit_here(&ns, &to, event, &json, &bins)?;
        let only_here = matches!(to, WireTarget::Socket(_)) && here;
        if !only_here && let Some(cluster) = self.shared.cluster.get() {
            cluster.emit_raw(&ns, to, event, json, bins);
        }
        Ok(())
    }

    /// Delivers to this hub's sockets; `Ok(false)` when the target is one
    /// socket that is not here.
    fn emit_here(
        &self,
        ns: &str,
        to: &WireTarget,
        event: &str,
        json: &str,
        bins: &[Bytes],
    ) -> Result<bool, ActionError> {
        let namespace = self.namespace(ns)?;
        let frames = packet::event_frames(&namespace.prefix, Some(event), json, bins, None);
        match to {
            WireTarget::Socket(sid) => match namespace.socket(sid) {
                Some(s) => match s.send(&frames) {
                    Pushed::Closed => Ok(false),
                    _ => Ok(true),
                },
                None => Ok(false),
            },
            WireTarget::Room(room) => {
                namespace.broadcast(&[room], &[], &frames);
                Ok(true)
            }
            WireTarget::Lobby => {
                namespace.broadcast(&[LOBBY], &[], &frames);
                Ok(true)
            }
            WireTarget::Namespace => {
                namespace.broadcast(&[], &[], &frames);
                Ok(true)
            }
            WireTarget::Rooms { rooms, except } => {
                let rooms: Vec<&str> = rooms.iter().map(String::as_str).collect();
                let except: Vec<&str> = except.iter().map(String::as_str).collect();
                namespace.broadcast(&rooms, &except, &frames);
                Ok(true)
            }
        }
    }

    /// Sends an event to one socket (on this hub) and waits for its ack.
    pub(crate) fn emit_with_ack(
        &self,
        ns: &str,
        sid: &str,
        event: &str,
        args: &[Value],
    ) -> Result<tokio::sync::oneshot::Receiver<crate::socketio::AckAnswer>, ActionError> {
        let socket = self.socket(ns, sid)?;
        Ok(socket.emit_with_ack(event, args))
    }

    /// Puts a socket of this hub in a room: in a chat namespace, moves it
    /// there (`None`: back to the lobby); in a host namespace, adds the
    /// room to its rooms.
    pub(crate) fn join_here(
        &self,
        ns: &str,
        sid: &str,
        room: Option<&str>,
    ) -> Result<(), ActionError> {
        let socket = self.socket(ns, sid)?;
        if let Some(chat) = socket.ext::<ChatSocket>() {
            let to = room.map_or(Scope::Lobby, |r| Scope::Room(r.to_owned()));
            crate::chat::handler::move_to(&self.shared, &socket, chat, to, true);
        } else if let Some(room) = room {
            socket.ns.join(&socket, room);
        }
        Ok(())
    }

    /// Takes a socket of this hub out of `room` (chat: back to the lobby,
    /// if it is in that room).
    pub(crate) fn leave_here(&self, ns: &str, sid: &str, room: &str) -> Result<(), ActionError> {
        let socket = self.socket(ns, sid)?;
        if let Some(chat) = socket.ext::<ChatSocket>() {
            crate::chat::handler::leave_room(&self.shared, &socket, chat, room);
        } else {
            socket.ns.leave(&socket, room);
        }
        Ok(())
    }

    /// Disconnects a socket of this hub (its client sees `io server
    /// disconnect`); done once this returns.
    pub(crate) fn disconnect_here(&self, ns: &str, sid: &str) -> Result<(), ActionError> {
        let socket = self.socket(ns, sid)?;
        socket.disconnect("server namespace disconnect");
        Ok(())
    }

    /// The rooms a socket of this hub is in, its own id first (as
    /// socket.io's `socket.rooms`: an id reaches its socket as a room name
    /// does): a chat socket's one room (none in the lobby), a host socket's
    /// rooms.
    pub(crate) fn rooms_of_here(&self, ns: &str, sid: &str) -> Result<Vec<String>, ActionError> {
        let socket = self.socket(ns, sid)?;
        let mut rooms = vec![sid.to_owned()];
        if let Some(chat) = socket.ext::<ChatSocket>() {
            rooms.extend(chat.state().room);
        } else {
            rooms.extend(socket.rooms());
        }
        Ok(rooms)
    }

    /// Who is where on this hub.
    pub(crate) fn list_here(&self, ns: &str) -> Result<NamespaceListing, ActionError> {
        let namespace = self.namespace(ns)?;
        let hub = self.shared.cluster.get().map(|c| c.node().to_owned());
        let mut lobby = Vec::new();
        let mut rooms: BTreeMap<String, Vec<MemberInfo>> = BTreeMap::new();
        for socket in namespace.sockets() {
            let sid = socket.id.to_string();
            if let Some(chat) = socket.ext::<ChatSocket>() {
                let st = chat.state();
                let member = MemberInfo {
                    sid,
                    name: st.name,
                    hub: hub.clone(),
                };
                match st.room {
                    Some(room) => rooms.entry(room).or_default().push(member),
                    None => lobby.push(member),
                }
            } else {
                let joined = socket.rooms();
                if joined.is_empty() {
                    lobby.push(MemberInfo {
                        sid: sid.clone(),
                        name: None,
                        hub: hub.clone(),
                    });
                }
                for room in joined {
                    rooms.entry(room).or_default().push(MemberInfo {
                        sid: sid.clone(),
                        name: None,
                        hub: hub.clone(),
                    });
                }
            }
        }
        Ok(sorted(ns, lobby, rooms))
    }
}

/// A listing in its order: members by name then id, rooms by name.
pub(crate) fn sorted(
    ns: &str,
    mut lobby: Vec<MemberInfo>,
    rooms: BTreeMap<String, Vec<MemberInfo>>,
) -> NamespaceListing {
    let by_name = |a: &MemberInfo, b: &MemberInfo| (&a.name, &a.sid).cmp(&(&b.name, &b.sid));
    lobby.sort_by(by_name);
    NamespaceListing {
        ns: ns.to_owned(),
        lobby,
        rooms: rooms
            .into_iter()
            .map(|(name, mut members)| {
                members.sort_by(by_name);
                RoomInfo { name, members }
            })
            .collect(),
    }
}

impl LocalOps for Core {
    fn local_emit(&self, ns: &str, to: &WireTarget, event: &str, json: &str, bins: &[Bytes]) {
        if let Err(e) = self.emit_here(ns, to, event, json, bins) {
            tracing::debug!("cluster emit not delivered here: {e}");
        }
    }

    fn local_join(&self, ns: &str, sid: &str, room: Option<&str>) -> Result<(), ActionError> {
        self.join_here(ns, sid, room)
    }

    fn local_leave(&self, ns: &str, sid: &str, room: &str) -> Result<(), ActionError> {
        self.leave_here(ns, sid, room)
    }

    fn local_disconnect(&self, ns: &str, sid: &str) -> Result<(), ActionError> {
        self.disconnect_here(ns, sid)
    }

    fn local_list(&self, ns: &str) -> Result<NamespaceListing, ActionError> {
        self.list_here(ns)
    }

    fn local_streamed(
        &self,
        ns: &str,
        pos: crate::socketio::recovery::Pos,
        rooms: &[String],
        except: &[String],
        frames: &[crate::engine::Frame],
        joins: Option<u64>,
    ) {
        if let Ok(namespace) = self.namespace(ns) {
            let rooms: Vec<&str> = rooms.iter().map(String::as_str).collect();
            let except: Vec<&str> = except.iter().map(String::as_str).collect();
            namespace.deliver_streamed(pos, &rooms, &except, frames, joins);
        }
    }

    fn local_unstreamed(
        &self,
        ns: &str,
        rooms: &[String],
        except: &[String],
        frames: &[crate::engine::Frame],
    ) {
        if let Ok(namespace) = self.namespace(ns) {
            let rooms: Vec<&str> = rooms.iter().map(String::as_str).collect();
            let except: Vec<&str> = except.iter().map(String::as_str).collect();
            namespace.deliver_unstreamed(&rooms, &except, frames);
        }
    }

    fn local_members(&self) -> Vec<crate::cluster::Member> {
        let mut out = Vec::new();
        for namespace in self.sio().namespaces() {
            for socket in namespace.sockets() {
                if let Some(chat) = socket.ext::<ChatSocket>() {
                    let st = chat.state();
                    out.push(crate::cluster::Member {
                        ns: namespace.path.clone(),
                        sid: socket.id.to_string(),
                        name: st.name,
                        room: st.room,
                    });
                }
            }
        }
        out
    }
}
