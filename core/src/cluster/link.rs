//! How a hub reaches Redis: one server, or a Redis Cluster.
//!
//! On one server the hubs use plain pub/sub (`PUBLISH`, `SUBSCRIBE`). On a
//! Redis Cluster ([`HubConfig::redis_cluster`](crate::HubConfig::redis_cluster))
//! they use sharded pub/sub (`SPUBLISH`, `SSUBSCRIBE`, Redis 7): each
//! channel lives on the shard that owns its hash slot, and only that shard
//! carries its lines, so rooms spread over the shards instead of every
//! line crossing every node of the cluster. Keys follow the same rule; the
//! recovery streams share one hash tag (`{PREFIX}`), so that one `XREAD`
//! reads them all on one shard.
//!
//! Everything else (the writer's ordered queue, the reader, outages) is the
//! same for both: this module only opens connections and names commands.

use redis::aio::ConnectionLike;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};
use std::time::Duration;
use tokio::sync::mpsc;

/// Where the hubs meet: one Redis, or the seed node of a Redis Cluster.
#[derive(Clone)]
pub(super) enum Redis {
    /// One server: pub/sub.
    Single(Box<redis::Client>),
    /// A Redis Cluster: sharded pub/sub.
    Sharded(Box<Sharded>),
}

/// How to reach a Redis Cluster.
#[derive(Clone)]
pub(super) struct Sharded {
    /// The seed node (the client learns the others from it).
    url: String,
    /// CA certificates for a `rediss://` cluster with its own CA.
    root_cert: Option<Vec<u8>>,
    /// For commands.
    client: redis::cluster::ClusterClient,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_sharded() {
            "Redis::Sharded"
        } else {
            "Redis::Single"
        })
    }
}

/// A connection for commands, to either kind.
#[derive(Clone)]
pub(super) enum Conn {
    Single(redis::aio::MultiplexedConnection),
    Sharded(redis::cluster_async::ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Sharded(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Sharded(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Sharded(c) => c.get_db(),
        }
    }
}

impl Redis {
    /// The client for `url` (a `rediss://` one trusting `root_cert`'s
    /// certificates instead of the system's, when given); `sharded`: `url`
    /// is a node of a Redis Cluster.
    pub(super) fn open(url: &str, root_cert: Option<Vec<u8>>, sharded: bool) -> RedisResult<Redis> {
        if !sharded {
            let client = match &root_cert {
                None => redis::Client::open(url)?,
                Some(root) => redis::Client::build_with_tls(
                    url,
                    redis::TlsCertificates {
                        client_tls: None,
                        root_cert: Some(root.clone()),
                    },
                )?,
            };
            return Ok(Redis::Single(Box::new(client)));
        }
        let client = Self::cluster_builder(url, root_cert.as_deref()).build()?;
        Ok(Redis::Sharded(Box::new(Sharded {
            url: url.to_owned(),
            root_cert,
            client,
        })))
    }

    fn cluster_builder(
        url: &str,
        root_cert: Option<&[u8]>,
    ) -> redis::cluster::ClusterClientBuilder {
        let mut b = redis::cluster::ClusterClientBuilder::new(vec![url.to_owned()])
            .connection_timeout(super::CONNECT_TIMEOUT)
            // A few quick tries (a moved slot, a node coming back), not the
            // default's many: the writer has its own timeout and reconnects.
            .retries(2);
        if let Some(root) = root_cert {
            b = b.certs(redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(root.to_vec()),
            });
        }
        b
    }

    /// Whether this is a Redis Cluster (sharded pub/sub).
    pub(super) fn is_sharded(&self) -> bool {
        matches!(self, Redis::Sharded(_))
    }

    /// The command that publishes to a channel.
    pub(super) fn publish_command(&self) -> &'static str {
        if self.is_sharded() {
            "SPUBLISH"
        } else {
            "PUBLISH"
        }
    }

    /// A connection for commands.
    pub(super) async fn connect(&self) -> RedisResult<Conn> {
        Ok(match self {
            Redis::Single(c) => Conn::Single(c.get_multiplexed_async_connection().await?),
            Redis::Sharded(s) => Conn::Sharded(s.client.get_async_connection().await?),
        })
    }

    /// A connection whose answers may take up to `response` (blocking
    /// reads).
    pub(super) async fn connect_blocking(&self, response: Duration) -> RedisResult<Conn> {
        Ok(match self {
            Redis::Single(c) => {
                let config = redis::AsyncConnectionConfig::new()
                    .set_response_timeout(Some(response))
                    .set_connection_timeout(Some(super::CONNECT_TIMEOUT));
                Conn::Single(
                    c.get_multiplexed_async_connection_with_config(&config)
                        .await?,
                )
            }
            Redis::Sharded(s) => {
                let client = Self::cluster_builder(&s.url, s.root_cert.as_deref())
                    .response_timeout(response)
                    .build()?;
                Conn::Sharded(client.get_async_connection().await?)
            }
        })
    }

    /// A subscriber, already subscribed to `channels`.
    pub(super) async fn subscribe(&self, channels: &[String]) -> RedisResult<(SubSink, SubStream)> {
        let (mut sink, stream) = match self {
            Redis::Single(c) => {
                let (sink, stream) = c.get_async_pubsub().await?.split();
                (SubSink::Single(sink), SubStream::Single(stream))
            }
            Redis::Sharded(s) => {
                // Pushes (RESP3) carry the messages; a fresh client per
                // subscriber, as the push channel is fixed at build time.
                let (tx, rx) = mpsc::unbounded_channel();
                let client = Self::cluster_builder(&s.url, s.root_cert.as_deref())
                    .use_protocol(redis::ProtocolVersion::RESP3)
                    .push_sender(tx)
                    .build()?;
                let conn = client.get_async_connection().await?;
                (SubSink::Sharded(conn), SubStream::Sharded(rx))
            }
        };
        sink.subscribe(channels).await?;
        Ok((sink, stream))
    }
}

/// The half of a subscriber that subscribes.
pub(super) enum SubSink {
    Single(redis::aio::PubSubSink),
    Sharded(redis::cluster_async::ClusterConnection),
}

impl SubSink {
    /// Subscribes to `channels` (nothing for none).
    pub(super) async fn subscribe(&mut self, channels: &[String]) -> RedisResult<()> {
        if channels.is_empty() {
            return Ok(());
        }
        match self {
            SubSink::Single(s) => s.subscribe(channels).await,
            SubSink::Sharded(c) => {
                // One by one: one command's channels must share a slot.
                for channel in channels {
                    c.ssubscribe(channel).await?;
                }
                Ok(())
            }
        }
    }

    /// Unsubscribes from `channel`.
    pub(super) async fn unsubscribe(&mut self, channel: &str) -> RedisResult<()> {
        match self {
            SubSink::Single(s) => s.unsubscribe(channel).await,
            SubSink::Sharded(c) => c.sunsubscribe(channel).await,
        }
    }
}

/// The half of a subscriber that receives.
pub(super) enum SubStream {
    Single(redis::aio::PubSubStream),
    Sharded(mpsc::UnboundedReceiver<redis::PushInfo>),
}

/// A message's payload.
pub(super) enum Payload {
    Msg(redis::Msg),
    Bytes(Vec<u8>),
}

impl Payload {
    pub(super) fn as_bytes(&self) -> &[u8] {
        match self {
            Payload::Msg(m) => m.get_payload_bytes(),
            Payload::Bytes(b) => b,
        }
    }
}

impl SubStream {
    /// The next message; `None` once the link is lost (any node's, on a
    /// cluster: the caller subscribes again from scratch).
    pub(super) async fn next(&mut self) -> Option<Payload> {
        use futures_util::StreamExt;
        match self {
            SubStream::Single(s) => s.next().await.map(Payload::Msg),
            SubStream::Sharded(rx) => loop {
                let push = rx.recv().await?;
                match push.kind {
                    redis::PushKind::SMessage | redis::PushKind::Message => {
                        // [channel, payload]
                        if let Some(Value::BulkString(b)) = push.data.into_iter().nth(1) {
                            return Some(Payload::Bytes(b));
                        }
                    }
                    redis::PushKind::Disconnection => return None,
                    _ => {}
                }
            },
        }
    }
}

/// The Redis Cluster hash slot of a key or channel: CRC16 (XMODEM) of its
/// hash tag (the text between the first `{` and the next `}`, when not
/// empty) or of all of it, modulo 16384.
pub(super) fn slot(key: &[u8]) -> u16 {
    let tagged = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            rest.iter()
                .position(|&b| b == b'}')
                .filter(|&close| close > 0)
                .map(|close| &rest[..close])
        })
        .unwrap_or(key);
    crc16(tagged) % 16384
}

fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_redis_s_rule() {
        // Figures from Redis's own documentation of the key distribution.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"{user1000}.following"), slot(b"{user1000}.followers"));
        assert_eq!(slot(b"{user1000}.following"), slot(b"user1000"));
        // An empty tag is no tag: the whole key.
        assert_eq!(slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") % 16384);
        assert_eq!(slot(b"foo{{bar}}zap"), slot(b"{bar"));
        assert_eq!(slot(b"foo{bar}{zap}"), slot(b"bar"));
    }
}
