//! Host actions on a running socketioxide instance, behind an object-safe
//! trait so that [`Hub`](crate::Hub) does not depend on the adapter type.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde::Serialize;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::socket::Sid;
use tokio::sync::oneshot;

use crate::chat::Scope;
use crate::cluster::{LocalOps, WireTarget};
use crate::error::ActionError;
use crate::session::{LOBBY, Namespace};
use crate::value::{ArgList, Value};

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
    /// Every socket in a chat room.
    Room {
        /// The namespace.
        ns: String,
        /// The room.
        room: String,
    },
    /// Every socket in the lobby (in no room).
    Lobby {
        /// The namespace.
        ns: String,
    },
    /// Every socket of the namespace.
    Namespace {
        /// The namespace.
        ns: String,
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

    /// A chat room.
    pub fn room(ns: impl Into<String>, room: impl Into<String>) -> Target {
        Target::Room {
            ns: ns.into(),
            room: room.into(),
        }
    }

    /// The lobby.
    pub fn lobby(ns: impl Into<String>) -> Target {
        Target::Lobby { ns: ns.into() }
    }

    /// The whole namespace.
    pub fn namespace(ns: impl Into<String>) -> Target {
        Target::Namespace { ns: ns.into() }
    }

    /// The namespace targeted.
    pub fn ns(&self) -> &str {
        match self {
            Target::Socket { ns, .. }
            | Target::Room { ns, .. }
            | Target::Lobby { ns }
            | Target::Namespace { ns } => ns,
        }
    }
}

/// A socket in a listing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub struct MemberInfo {
    /// The socket id.
    pub sid: String,
    /// Its login name, if it logged in.
    pub name: Option<String>,
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
    /// The sockets in no room, by name then id.
    pub lobby: Vec<MemberInfo>,
    /// The rooms, by name.
    pub rooms: Vec<RoomInfo>,
}

impl NamespaceListing {
    /// Every member, lobby and rooms.
    pub fn socket_count(&self) -> usize {
        self.lobby.len() + self.rooms.iter().map(|r| r.members.len()).sum::<usize>()
    }
}

/// A host action, executed in order by the hub's command task.
#[derive(Debug)]
pub(crate) enum Command {
    Emit {
        target: Target,
        event: String,
        args: Vec<Value>,
    },
    Move {
        ns: String,
        sid: String,
        to: Scope,
        reply: oneshot::Sender<Result<(), ActionError>>,
    },
    Disconnect {
        ns: String,
        sid: String,
        reply: oneshot::Sender<Result<(), ActionError>>,
    },
    List {
        ns: String,
        reply: oneshot::Sender<Result<NamespaceListing, ActionError>>,
    },
}

/// What the hub needs from the chat, whatever the adapter.
pub(crate) trait Backend: Send + Sync + 'static {
    /// Runs one host action. Returns once it was handed on (an emit) or
    /// queued behind the socket's events (a move).
    fn execute(&self, cmd: Command) -> BoxFuture<'_, ()>;
    /// Disconnects every socket from its namespace (shutdown); returns the
    /// Engine.IO session ids of those on long-polling.
    fn disconnect_all(&self) -> Vec<String>;
    /// Waits until every socket's leave was handled.
    fn wait_empty(&self) -> BoxFuture<'_, ()>;
    /// Closes every connection and the adapter.
    fn close(&self) -> BoxFuture<'_, ()>;
    /// Sockets connected now, over all namespaces.
    fn socket_count(&self) -> usize;
}

pub(crate) struct Chat<A: Adapter> {
    pub(crate) io: SocketIo<A>,
    pub(crate) namespaces: HashMap<String, Arc<Namespace<A>>>,
    pub(crate) shared: Arc<crate::session::Shared>,
}

impl<A: Adapter> Chat<A> {
    fn namespace(&self, ns: &str) -> Result<&Arc<Namespace<A>>, ActionError> {
        self.namespaces
            .get(ns)
            .ok_or_else(|| ActionError::UnknownNamespace(ns.to_owned()))
    }

    /// Delivers to this node's sockets; `Ok(false)` when the target is one
    /// socket that is not here.
    async fn emit_here(
        &self,
        ns: &str,
        to: &WireTarget,
        event: &str,
        args: &[Value],
    ) -> Result<bool, ActionError> {
        self.namespace(ns)?;
        let op = self.io.of(ns).ok_or(ActionError::Closed)?;
        let data = ArgList(args);
        match to {
            WireTarget::Socket(sid) => {
                match Sid::from_str(sid).ok().and_then(|id| op.get_socket(id)) {
                    Some(socket) => socket
                        .emit(event, &data)
                        .map(|()| true)
                        .map_err(|e| ActionError::Delivery(e.to_string())),
                    None => Ok(false),
                }
            }
            WireTarget::Room(room) => op
                .to(room.clone())
                .emit(event, &data)
                .await
                .map(|()| true)
                .map_err(delivery),
            WireTarget::Lobby => op
                .to(LOBBY)
                .emit(event, &data)
                .await
                .map(|()| true)
                .map_err(delivery),
            WireTarget::Namespace => op.emit(event, &data).await.map(|()| true).map_err(delivery),
        }
    }

    async fn emit(
        &self,
        target: Target,
        event: String,
        args: Vec<Value>,
    ) -> Result<(), ActionError> {
        let (ns, to) = match target {
            Target::Socket { ns, sid } => (ns, WireTarget::Socket(sid)),
            Target::Room { ns, room } => (ns, WireTarget::Room(room)),
            Target::Lobby { ns } => (ns, WireTarget::Lobby),
            Target::Namespace { ns } => (ns, WireTarget::Namespace),
        };
        let delivered_to_the_one = self.emit_here(&ns, &to, &event, &args).await?;
        let only_here = matches!(to, WireTarget::Socket(_)) && delivered_to_the_one;
        if !only_here && let Some(cluster) = self.cluster() {
            cluster.emit(&ns, to, &event, &args);
        }
        Ok(())
    }

    fn move_here(
        &self,
        ns: &str,
        sid: &str,
        to: Scope,
    ) -> Result<oneshot::Receiver<()>, ActionError> {
        let (session, socket) = self.find(ns, sid)?;
        session.enqueue_move(socket, to)
    }

    /// Disconnects a local socket; the future resolves once its leave was
    /// handled (the others told, the listings updated).
    fn disconnect_here(
        &self,
        ns: &str,
        sid: &str,
    ) -> Result<impl std::future::Future<Output = ()> + Send + use<A>, ActionError> {
        let (session, socket) = self.find(ns, sid)?;
        let left = session.left();
        session
            .end(socket)
            .map_err(|e| ActionError::Delivery(e.to_string()))?;
        Ok(left)
    }

    fn cluster(&self) -> Option<Arc<crate::cluster::Cluster>> {
        self.shared.cluster.get().cloned()
    }

    /// The session and its socket.
    #[allow(clippy::type_complexity)]
    fn find(
        &self,
        ns: &str,
        sid: &str,
    ) -> Result<
        (
            Arc<crate::session::Session<A>>,
            Arc<socketioxide::socket::Socket<A>>,
        ),
        ActionError,
    > {
        let namespace = self.namespace(ns)?;
        let not_found = || ActionError::SocketNotFound {
            ns: ns.to_owned(),
            sid: sid.to_owned(),
        };
        let id = Sid::from_str(sid).map_err(|_| not_found())?;
        let session = namespace.session(id).ok_or_else(not_found)?;
        let socket = session.socket().ok_or_else(not_found)?;
        Ok((session, socket))
    }

    fn list_here(&self, ns: &str) -> Result<NamespaceListing, ActionError> {
        let namespace = self.namespace(ns)?;
        let mut lobby = Vec::new();
        let mut rooms: BTreeMap<String, Vec<MemberInfo>> = BTreeMap::new();
        for (sid, state) in namespace.snapshot() {
            let member = MemberInfo {
                sid: sid.to_string(),
                name: state.name,
            };
            match state.room {
                Some(room) => rooms.entry(room).or_default().push(member),
                None => lobby.push(member),
            }
        }
        let by_name = |a: &MemberInfo, b: &MemberInfo| (&a.name, &a.sid).cmp(&(&b.name, &b.sid));
        lobby.sort_by(by_name);
        Ok(NamespaceListing {
            ns: ns.to_owned(),
            lobby,
            rooms: rooms
                .into_iter()
                .map(|(name, mut members)| {
                    members.sort_by(by_name);
                    RoomInfo { name, members }
                })
                .collect(),
        })
    }
}

fn delivery(e: socketioxide::BroadcastError) -> ActionError {
    ActionError::Delivery(e.to_string())
}

impl<A: Adapter> LocalOps for Chat<A> {
    fn local_emit<'a>(
        &'a self,
        ns: &'a str,
        to: &'a WireTarget,
        event: &'a str,
        args: &'a [Value],
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Err(e) = self.emit_here(ns, to, event, args).await {
                tracing::debug!("cluster emit not delivered here: {e}");
            }
        })
    }

    fn local_move(
        &self,
        ns: &str,
        sid: &str,
        to: Scope,
    ) -> Result<oneshot::Receiver<()>, ActionError> {
        self.move_here(ns, sid, to)
    }

    fn local_disconnect(&self, ns: &str, sid: &str) -> Result<BoxFuture<'static, ()>, ActionError> {
        self.disconnect_here(ns, sid)
            .map(|f| Box::pin(f) as BoxFuture<'static, ()>)
    }

    fn local_list(&self, ns: &str) -> Result<NamespaceListing, ActionError> {
        self.list_here(ns)
    }
}

impl<A: Adapter> Backend for Chat<A> {
    fn execute(&self, cmd: Command) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            match cmd {
                Command::Emit {
                    target,
                    event,
                    args,
                } => {
                    if let Err(e) = self.emit(target, event, args).await {
                        tracing::debug!("host emit not delivered: {e}");
                    }
                }
                Command::Move { ns, sid, to, reply } => {
                    match self.move_here(&ns, &sid, to.clone()) {
                        Ok(done) => {
                            let not_found = ActionError::SocketNotFound { ns, sid };
                            tokio::spawn(async move {
                                let _ = reply.send(done.await.map_err(|_| not_found));
                            });
                        }
                        Err(ActionError::SocketNotFound { .. }) if self.cluster().is_some() => {
                            let cluster = self.cluster();
                            tokio::spawn(async move {
                                if let Some(c) = cluster {
                                    let _ = reply.send(c.remote_move(&ns, &sid, to).await);
                                }
                            });
                        }
                        Err(e) => {
                            let _ = reply.send(Err(e));
                        }
                    }
                }
                Command::Disconnect { ns, sid, reply } => match self.disconnect_here(&ns, &sid) {
                    Ok(left) => {
                        tokio::spawn(async move {
                            left.await;
                            let _ = reply.send(Ok(()));
                        });
                    }
                    Err(ActionError::SocketNotFound { .. }) if self.cluster().is_some() => {
                        let cluster = self.cluster();
                        tokio::spawn(async move {
                            if let Some(c) = cluster {
                                let _ = reply.send(c.remote_disconnect(&ns, &sid).await);
                            }
                        });
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                },
                Command::List { ns, reply } => match (self.list_here(&ns), self.cluster()) {
                    (Ok(listing), Some(cluster)) => {
                        tokio::spawn(async move {
                            let _ = reply.send(Ok(cluster.merge_listing(listing).await));
                        });
                    }
                    (result, _) => {
                        let _ = reply.send(result);
                    }
                },
            }
        })
    }

    fn disconnect_all(&self) -> Vec<String> {
        let mut polling = Vec::new();
        for (ns, namespace) in &self.namespaces {
            if let Some(op) = self.io.of(ns) {
                for socket in op.sockets() {
                    if socket.transport_type() == socketioxide::TransportType::Polling {
                        polling.push(socket.id.to_string());
                    }
                    let found = namespace
                        .session(socket.id)
                        .and_then(|session| session.socket().map(|s| (session, s)));
                    let ended = match found {
                        Some((session, s)) => session.end(s),
                        // Not registered yet (still connecting): no leave
                        // to name.
                        None => socket.disconnect(),
                    };
                    if let Err(e) = ended {
                        tracing::debug!("cannot disconnect a socket at shutdown: {e}");
                    }
                }
            }
        }
        polling.sort();
        polling.dedup();
        polling
    }

    fn wait_empty(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            for ns in self.namespaces.values() {
                ns.wait_empty().await;
            }
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move { self.io.close().await })
    }

    fn socket_count(&self) -> usize {
        self.namespaces.values().map(|ns| ns.len()).sum()
    }
}
