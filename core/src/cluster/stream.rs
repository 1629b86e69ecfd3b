//! Redis streams for the namespaces with recovery: one order for every hub,
//! offsets every hub understands, sessions any hub can take back.
//!
//! A namespace with recovery on, in a cluster, sends its broadcasts to the
//! Redis stream `PREFIX#log#NS` (`XADD`, capped at the recovery's
//! `max_packets` entries, expiring after its keep time) instead of
//! delivering them itself and publishing them. Every hub, the sending one
//! included, reads the stream (`XREAD`) and delivers each entry to its own
//! sockets, in the stream's order, with the entry's id as the offset. The
//! id means the same on every hub and after a restart: a client that comes
//! back anywhere with it gets, from the stream, what it missed.
//!
//! A dropped socket's session (its id, rooms and chat state) is kept under
//! `PREFIX#rs#NS#PID` for the recovery window (`SET … PX`) and taken once
//! (`GETDEL`) by whichever hub the client comes back to.
//!
//! Redis away: a broadcast the stream cannot take is delivered on its own
//! hub only, without an offset, and no offset from before it is recovered
//! there (a hole); the reader resumes from its last id once Redis is back,
//! so the entries other hubs added meanwhile still arrive, in order.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use redis::Value as RValue;
use serde::{Deserialize, Serialize};

use super::link::{self, Conn, Redis};
use super::{CONNECT_TIMEOUT, Cluster};
use crate::engine::{Frame, Kind, Sid};
use crate::socketio::recovery::{Fetched, Pos};
use crate::socketio::{BoxFuture, RemoteSession, Stream};

/// How many entries one read takes at most.
const READ_COUNT: usize = 512;
/// How long one blocking read waits (so that a stop is noticed).
const READ_BLOCK: Duration = Duration::from_secs(1);

/// A namespace whose broadcasts go through a stream, and its bounds.
#[derive(Debug, Clone)]
pub(crate) struct StreamSpec {
    /// The namespace.
    pub(crate) ns: String,
    /// Most entries the stream keeps.
    pub(crate) max_len: usize,
    /// How long the stream lives after its last entry.
    pub(crate) keep: Duration,
}

#[derive(Debug)]
struct Opened {
    key: String,
    max_len: usize,
    keep_ms: u64,
    /// The stream's last entry when this hub started.
    head: Pos,
}

/// The streamed namespaces of a hub.
#[derive(Debug, Default)]
pub(crate) struct Streams {
    prefix: String,
    by_ns: HashMap<String, Opened>,
}

impl Streams {
    /// Finds where each stream ends now.
    /// `sharded`: on a Redis Cluster, every stream's key has the hash tag
    /// `{PREFIX}`, so that they share a slot and one `XREAD` reads them all.
    pub(super) async fn open(
        conn: &mut Conn,
        prefix: &str,
        sharded: bool,
        specs: Vec<StreamSpec>,
    ) -> redis::RedisResult<Streams> {
        let mut by_ns = HashMap::new();
        for spec in specs {
            let key = if sharded {
                format!("{{{prefix}}}#log#{}", spec.ns)
            } else {
                format!("{prefix}#log#{}", spec.ns)
            };
            let last: RValue = redis::cmd("XREVRANGE")
                .arg(&key)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1)
                .query_async(conn)
                .await?;
            let head = entries(&last)
                .first()
                .map(|(pos, _)| *pos)
                .unwrap_or_default();
            by_ns.insert(
                spec.ns,
                Opened {
                    key,
                    max_len: spec.max_len.max(1),
                    keep_ms: u64::try_from(spec.keep.as_millis()).unwrap_or(u64::MAX),
                    head,
                },
            );
        }
        Ok(Streams {
            prefix: prefix.to_owned(),
            by_ns,
        })
    }

    pub(super) fn is_empty(&self) -> bool {
        self.by_ns.is_empty()
    }

    /// Whether `ns` is streamed.
    pub(super) fn has(&self, ns: &str) -> bool {
        self.by_ns.contains_key(ns)
    }

    fn session_key(&self, ns: &str, pid: Sid) -> String {
        format!("{}#rs#{ns}#{pid}", self.prefix)
    }
}

/// A broadcast on its way to a stream.
#[derive(Debug)]
pub(crate) struct Appended {
    pub(crate) ns: String,
    key: String,
    max_len: usize,
    keep_ms: u64,
    pub(crate) rooms: Vec<String>,
    pub(crate) except: Vec<String>,
    pub(crate) frames: Vec<Frame>,
    /// The sending hub and its namespace's join count then.
    origin: String,
    joins: u64,
}

/// What the cluster's writer sends to Redis, in order.
#[derive(Debug)]
pub(crate) enum Out {
    /// A pub/sub message.
    Publish { channel: String, text: String },
    /// A broadcast for a namespace's stream.
    Append(Box<Appended>),
    /// A session kept for a while.
    Set { key: String, value: String, px: u64 },
    /// A session taken back (once): in this queue, so that it comes after
    /// the `Set` of a socket that dropped a moment ago.
    Take {
        key: String,
        reply: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<Option<String>>>>,
    },
}

/// The entry's metadata, beside its frames.
#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    #[serde(rename = "r", default)]
    rooms: Vec<String>,
    #[serde(rename = "x", default)]
    except: Vec<String>,
    /// The hub that sent it.
    #[serde(rename = "o", default)]
    origin: String,
    /// Its namespace's join count then.
    #[serde(rename = "j", default)]
    joins: u64,
}

impl Out {
    /// Adds its commands to a pipeline (a `Take`'s `GETDEL` is the one
    /// whose answer is kept); a stream it appends to goes in `appended`,
    /// for one `PEXPIRE` per stream and pipeline.
    fn add_to<'a>(
        &'a self,
        pipe: &mut redis::Pipeline,
        publish: &str,
        appended: &mut Vec<(&'a str, u64)>,
    ) {
        match self {
            Out::Publish { channel, text } => {
                pipe.cmd(publish).arg(channel).arg(text).ignore();
            }
            Out::Append(a) => {
                let meta = serde_json::to_string(&Meta {
                    rooms: a.rooms.clone(),
                    except: a.except.clone(),
                    origin: a.origin.clone(),
                    joins: a.joins,
                })
                .unwrap_or_default();
                // Trimmed a whole radix node at a time (`~`): exact
                // trimming costs Redis more than the append. The stream
                // may then hold somewhat more than `max_len`; a fetch
                // still refuses an offset further back than that.
                pipe.cmd("XADD")
                    .arg(&a.key)
                    .arg("MAXLEN")
                    .arg("~")
                    .arg(a.max_len)
                    .arg("*")
                    .arg("m")
                    .arg(meta)
                    .arg("f")
                    .arg(encode_frames(&a.frames))
                    .ignore();
                if !appended.iter().any(|(k, _)| *k == a.key) {
                    appended.push((&a.key, a.keep_ms));
                }
            }
            Out::Set { key, value, px } => {
                pipe.cmd("SET")
                    .arg(key)
                    .arg(value)
                    .arg("PX")
                    .arg(*px)
                    .ignore();
            }
            Out::Take { key, .. } => {
                pipe.cmd("GETDEL").arg(key);
            }
        }
    }

    /// The key or channel it goes to (its hash slot decides the shard of
    /// a Redis Cluster).
    fn key(&self) -> &str {
        match self {
            Out::Publish { channel, .. } => channel,
            Out::Append(a) => &a.key,
            Out::Set { key, .. } | Out::Take { key, .. } => key,
        }
    }
}

/// Sends commands in order, and hands each `Take` its answer: on one Redis
/// as one pipeline; on a Redis Cluster as one pipeline per hash slot (a
/// pipeline must stay within one), all at once, each in order. A failure
/// fails them all (the caller counts them lost).
pub(super) async fn run_all(outs: &[Out], c: &mut Conn, redis: &Redis) -> redis::RedisResult<()> {
    let publish = redis.publish_command();
    if !redis.is_sharded() {
        return run_pipeline(outs.iter(), c, publish).await;
    }
    let mut by_slot: Vec<(u16, Vec<&Out>)> = Vec::new();
    for out in outs {
        let slot = link::slot(out.key().as_bytes());
        match by_slot.iter_mut().find(|(s, _)| *s == slot) {
            Some((_, group)) => group.push(out),
            None => by_slot.push((slot, vec![out])),
        }
    }
    let runs = by_slot.into_iter().map(|(_, group)| {
        let mut c = c.clone();
        async move { run_pipeline(group.into_iter(), &mut c, publish).await }
    });
    futures_util::future::try_join_all(runs).await.map(|_| ())
}

/// Sends commands as one pipeline, in order, and hands each `Take` its
/// answer.
async fn run_pipeline<'a>(
    outs: impl Iterator<Item = &'a Out> + Clone,
    c: &mut Conn,
    publish: &str,
) -> redis::RedisResult<()> {
    let mut pipe = redis::pipe();
    let mut appended = Vec::new();
    for out in outs.clone() {
        out.add_to(&mut pipe, publish, &mut appended);
    }
    // Last: the streams live on for their keep time after their last entry.
    for (key, keep_ms) in appended {
        pipe.cmd("PEXPIRE").arg(key).arg(keep_ms).ignore();
    }
    let answers: Vec<RValue> = pipe.query_async(c).await?;
    let mut answers = answers.into_iter();
    for out in outs {
        if let Out::Take { reply, .. } = out {
            let text = match answers.next() {
                Some(RValue::BulkString(b)) => String::from_utf8(b).ok(),
                Some(RValue::SimpleString(s)) => Some(s),
                _ => None,
            };
            let tx = reply.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(tx) = tx {
                let _ = tx.send(text);
            }
        }
    }
    Ok(())
}

/// Frames as bytes: for each, `t` (a text packet) or `b` (binary), its
/// length (4 bytes, big-endian) and its Engine.IO payload.
fn encode_frames(frames: &[Frame]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut put = |f: &Frame| {
        let p = f.payload();
        out.push(if f.is_binary() { b'b' } else { b't' });
        out.extend_from_slice(&u32::try_from(p.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(&p);
    };
    for f in frames {
        match f.parts() {
            Some(parts) => parts.iter().for_each(&mut put),
            None => put(f),
        }
    }
    out
}

/// The frames [`encode_frames`] wrote; `None` if they do not read back.
fn decode_frames(mut b: &[u8]) -> Option<Vec<Frame>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let (&tag, rest) = b.split_first()?;
        let len = usize::try_from(u32::from_be_bytes(rest.get(..4)?.try_into().ok()?)).ok()?;
        let payload = rest.get(4..4 + len)?;
        b = &rest[4 + len..];
        out.push(match tag {
            b't' => {
                let (&kind, data) = payload.split_first()?;
                if kind != Kind::Message as u8 {
                    return None;
                }
                Frame::text(Kind::Message, data)
            }
            b'b' => Frame::binary(payload),
            _ => return None,
        });
    }
    Some(out)
}

/// The bytes of a Redis string reply.
fn bytes(v: &RValue) -> Option<&[u8]> {
    match v {
        RValue::BulkString(b) => Some(b),
        RValue::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

/// The items of an array (or the pairs of a map, flattened).
fn items(v: &RValue) -> Vec<&RValue> {
    match v {
        RValue::Array(a) | RValue::Set(a) => a.iter().collect(),
        RValue::Map(m) => m.iter().flat_map(|(k, v)| [k, v]).collect(),
        _ => Vec::new(),
    }
}

/// A stream entry's fields, by name.
type Fields<'a> = HashMap<&'a [u8], &'a [u8]>;

/// The entries of an `XRANGE` reply (or of one stream in `XREAD`'s):
/// their ids and fields.
fn entries(v: &RValue) -> Vec<(Pos, Fields<'_>)> {
    let mut out = Vec::new();
    for e in items(v) {
        let e = items(e);
        let (Some(id), Some(fields)) = (e.first(), e.get(1)) else {
            continue;
        };
        let Some(pos) = bytes(id)
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(Pos::parse_stream_id)
        else {
            continue;
        };
        let fields = items(fields);
        let map = fields
            .chunks(2)
            .filter_map(|kv| Some((bytes(kv.first()?)?, bytes(kv.get(1)?)?)))
            .collect();
        out.push((pos, map));
    }
    out
}

/// An entry's broadcast, and who sent it with which join count; `None` if
/// it does not read back.
fn fetched(pos: Pos, fields: &Fields<'_>) -> Option<(Fetched, String, u64)> {
    let meta: Meta = serde_json::from_slice(fields.get(&b"m"[..])?).ok()?;
    let frames = decode_frames(fields.get(&b"f"[..])?)?;
    let f = Fetched {
        pos,
        rooms: meta.rooms,
        except: meta.except,
        frames,
    };
    Some((f, meta.origin, meta.joins))
}

/// The cluster as the Socket.IO layer's [`Stream`].
#[derive(Debug, Clone)]
pub(crate) struct ClusterStream(pub(crate) Arc<Cluster>);

impl ClusterStream {
    /// Where `ns`'s stream ended when this hub started (`None`: not
    /// streamed).
    pub(crate) fn head(&self, ns: &str) -> Option<Pos> {
        self.0.streams.by_ns.get(ns).map(|o| o.head)
    }

    /// A connection for queries (made again after a failure).
    async fn query(&self) -> Option<Conn> {
        let mut slot = self.0.query.lock().await;
        if slot.is_none() && self.0.is_up() {
            *slot = tokio::time::timeout(CONNECT_TIMEOUT, self.0.redis.connect())
                .await
                .ok()
                .and_then(Result::ok);
        }
        slot.clone()
    }

    /// Forgets the query connection after a failure.
    async fn drop_query(&self) {
        *self.0.query.lock().await = None;
    }
}

impl Stream for ClusterStream {
    fn append(
        &self,
        ns: &str,
        rooms: &[&str],
        except: &[&str],
        frames: &[Frame],
        joins: u64,
    ) -> bool {
        let Some(o) = self.0.streams.by_ns.get(ns) else {
            return false;
        };
        if !self.0.is_up() {
            return false;
        }
        self.0.queue(Out::Append(Box::new(Appended {
            ns: ns.to_owned(),
            key: o.key.clone(),
            max_len: o.max_len,
            keep_ms: o.keep_ms,
            rooms: rooms.iter().map(|r| (*r).to_owned()).collect(),
            except: except.iter().map(|x| (*x).to_owned()).collect(),
            frames: frames.to_vec(),
            origin: self.0.node.clone(),
            joins,
        })))
    }

    fn save_session(&self, ns: &str, pid: Sid, session: RemoteSession, window: Duration) {
        let Ok(value) = serde_json::to_string(&session) else {
            return;
        };
        let px = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
        let key = self.0.streams.session_key(ns, pid);
        if !self.0.queue(Out::Set { key, value, px }) {
            self.0.count_lost();
        }
    }

    fn take_session(&self, ns: &str, pid: Sid) -> BoxFuture<Option<RemoteSession>> {
        let this = self.clone();
        let key = self.0.streams.session_key(ns, pid);
        Box::pin(async move {
            if !this.0.is_up() {
                return None;
            }
            let (tx, rx) = tokio::sync::oneshot::channel();
            let reply = std::sync::Mutex::new(Some(tx));
            if !this.0.queue(Out::Take { key, reply }) {
                return None;
            }
            // Nothing (or a failed command, which drops the sender): the
            // session is gone, was taken, or Redis could not tell.
            let text = rx.await.ok()??;
            serde_json::from_str(&text).ok()
        })
    }

    fn read_now(&self, _ns: &str) {
        // One reader reads every stream.
        self.0.read_now.notify_one();
    }

    fn fetch(&self, ns: &str, from: Pos, max: usize) -> BoxFuture<Option<Vec<Fetched>>> {
        let this = self.clone();
        let key = self.0.streams.by_ns.get(ns).map(|o| o.key.clone());
        Box::pin(async move {
            let key = key?;
            let mut c = this.query().await?;
            // From the client's own entry, to tell that it is still there
            // (nothing after it was trimmed away).
            let start = if from == Pos::default() {
                "-".to_owned()
            } else {
                from.stream_id()
            };
            let mut cmd = redis::cmd("XRANGE");
            cmd.arg(&key)
                .arg(start)
                .arg("+")
                .arg("COUNT")
                .arg(max.saturating_add(2));
            let range = cmd.query_async::<RValue>(&mut c);
            let reply = match tokio::time::timeout(CONNECT_TIMEOUT, range).await {
                Ok(Ok(v)) => v,
                Ok(Err(e)) => {
                    tracing::debug!("cannot read a stream from Redis: {e}");
                    this.drop_query().await;
                    return None;
                }
                Err(_) => return None,
            };
            let all = entries(&reply);
            if all.len() > max.saturating_add(1) {
                return None; // more than recovery keeps
            }
            let mut out = Vec::with_capacity(all.len());
            let mut iter = all.iter().peekable();
            if from != Pos::default() {
                match iter.next() {
                    Some((pos, _)) if *pos == from => {}
                    _ => return None, // trimmed away
                }
            }
            for (pos, fields) in iter {
                out.push(fetched(*pos, fields)?.0);
            }
            Some(out)
        })
    }
}

/// Reads every streamed namespace's stream and delivers its entries here,
/// in order; after a lost connection, resumes from the last id read.
pub(super) async fn reader_task(cluster: Arc<Cluster>) {
    let mut stop = cluster.stop.subscribe();
    let streams: Vec<(String, String)> = cluster
        .streams
        .by_ns
        .iter()
        .map(|(ns, o)| (ns.clone(), o.key.clone()))
        .collect();
    let ns_of: HashMap<&str, &str> = streams
        .iter()
        .map(|(ns, key)| (key.as_str(), ns.as_str()))
        .collect();
    let mut last: HashMap<String, Pos> = cluster
        .streams
        .by_ns
        .values()
        .map(|o| (o.key.clone(), o.head))
        .collect();
    let mut conn = None;
    let mut backoff = Duration::from_millis(100);
    // When the last read brought entries: the next one waits until the
    // batch window since then has passed, so that a busy stream is read in
    // batches (one XREAD per hub for many entries, not one per entry).
    let mut read_again: Option<tokio::time::Instant> = None;
    loop {
        if let Some(at) = read_again.take() {
            tokio::select! {
                () = tokio::time::sleep_until(at) => {}
                () = cluster.read_now.notified() => {}
                () = crate::net::until_stopped(&mut stop) => return,
            }
        }
        if conn.is_none() {
            match cluster
                .redis
                .connect_blocking(READ_BLOCK + CONNECT_TIMEOUT)
                .await
            {
                Ok(c) => {
                    conn = Some(c);
                    backoff = Duration::from_millis(100);
                }
                Err(e) => {
                    tracing::debug!("stream reader: cannot reach Redis: {e}");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = crate::net::until_stopped(&mut stop) => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT")
            .arg(READ_COUNT)
            .arg("BLOCK")
            .arg(u64::try_from(READ_BLOCK.as_millis()).unwrap_or(1000))
            .arg("STREAMS");
        for (_, key) in &streams {
            cmd.arg(key);
        }
        for (_, key) in &streams {
            cmd.arg(last.get(key).copied().unwrap_or_default().stream_id());
        }
        let reply = tokio::select! {
            r = cmd.query_async::<RValue>(c) => r,
            () = crate::net::until_stopped(&mut stop) => return,
        };
        let reply = match reply {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!("stream reader: {e}; reconnecting");
                conn = None;
                continue;
            }
        };
        let Some(local) = cluster.local() else {
            continue;
        };
        if !matches!(reply, RValue::Nil) && !cluster.batch.is_zero() {
            read_again = Some(tokio::time::Instant::now() + cluster.batch);
        }
        // [[key, entries], …] (or a map of key → entries).
        let per_stream = items(&reply);
        for pair in per_stream.chunks(if matches!(reply, RValue::Map(_)) {
            2
        } else {
            1
        }) {
            let (key, list) = match pair {
                [k, v] => (*k, *v),
                [one] => {
                    let kv = items(one);
                    match (kv.first(), kv.get(1)) {
                        (Some(k), Some(v)) => (*k, *v),
                        _ => continue,
                    }
                }
                _ => continue,
            };
            let Some(key) = bytes(key).and_then(|b| std::str::from_utf8(b).ok()) else {
                continue;
            };
            let Some(ns) = ns_of.get(key) else { continue };
            for (pos, fields) in entries(list) {
                last.insert(key.to_owned(), pos);
                match fetched(pos, &fields) {
                    Some((f, origin, joins)) => {
                        let joins = (origin == cluster.node).then_some(joins);
                        local.local_streamed(ns, pos, &f.rooms, &f.except, &f.frames, joins);
                    }
                    None => tracing::debug!(ns, "ignoring an unreadable stream entry"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socketio::packet;

    #[test]
    fn frames_round_trip_through_the_stream_encoding() {
        let frames = packet::event(
            "/chat,",
            Some("b"),
            &[crate::value::Value::Binary(bytes::Bytes::from_static(
                b"\x00\xff",
            ))],
            None,
        );
        let back = decode_frames(&encode_frames(&frames)).unwrap();
        assert_eq!(back.len(), frames.len());
        for (a, b) in frames.iter().zip(&back) {
            assert_eq!(a.payload(), b.payload());
            assert_eq!(a.is_binary(), b.is_binary());
        }
        assert!(decode_frames(b"t\x00\x00\x00\x09short").is_none());
    }
}
