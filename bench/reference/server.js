'use strict';
// The benchmarks' reference: the chapter's chat (docs/PROTOCOL.md) written
// the ordinary way, with socket.io 4.8 on Node's http server. No flood
// limits; nothing tuned.
//
//   npm ci && PORT=3000 node server.js      (PORT=0: any free port)
//   RECOVERY=on node server.js               (socket.io's connection state recovery)
//   BENCH_ECHO=1 node server.js              (`echo` answers its ack: the acks benchmark)
//   REDIS_URL=redis://127.0.0.1:6379 node server.js
//                                            (scale-out: @socket.io/redis-adapter over
//                                             two node-redis clients, its defaults;
//                                             REDIS_SHARDED=1: its sharded adapter,
//                                             SSUBSCRIBE/SPUBLISH; REDIS_CLUSTER=1: the
//                                             sharded adapter on a Redis Cluster, over
//                                             node-redis's cluster client)

const http = require('node:http');
const { Server } = require('socket.io');

const PORT = Number(process.env.PORT ?? 3000);
const HOST = process.env.HOST ?? '127.0.0.1';
const NAMESPACES = ['/', '/chat'];
const MAX_NAME = 64;
const MAX_ROOM = 64;
const MAX_MESSAGE = 10000;
// Sockets in no room share this room. Room names are trimmed, so no client
// can name a room with a leading space.
const LOBBY = ' lobby';
const ECHO = process.env.BENCH_ECHO === '1';

const server = http.createServer((req, res) => {
  res.writeHead(404);
  res.end();
});
// RECOVERY=on: socket.io's connection state recovery with its defaults (2
// minutes), as the benchmarks' reconnect storm compares it.
const io = new Server(server, process.env.RECOVERY === 'on' ? { connectionStateRecovery: {} } : {});
const REDIS_URL = process.env.REDIS_URL || null;

// Length in characters (code points), as the protocol counts.
function tooLong(text, max) {
  return text.length > max && [...text].length > max;
}

// A checked name or room: [value, null] or [null, error text].
function checkLabel(value, notString, empty, max, what) {
  if (typeof value !== 'string') return [null, notString];
  const trimmed = value.trim();
  if (trimmed === '') return [null, empty];
  if (tooLong(trimmed, max)) return [null, `${what} must be at most ${max} characters`];
  return [trimmed, null];
}

function chat(nsp) {
  nsp.on('connection', (socket) => {
    // Name (null until login: the socket is named by its id) and room
    // (null: the lobby) in socket.data, which recovery restores.
    if (!socket.recovered) socket.data = { name: null, room: null };
    const here = () => socket.data.room ?? LOBBY;
    const who = () => socket.data.name ?? socket.id;

    // The event's arguments, with the ack callback (if any) taken off.
    const split = (args) => {
      const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
      return [args, ack];
    };
    const fail = (error, ack) => {
      socket.emit('serverMessage', `Error: ${error}`);
      if (ack) ack({ ok: false, error });
    };

    if (socket.recovered) {
      socket.to(here()).emit('serverMessage', `User ${who()} is back`);
    } else {
      socket.emit('login');
      socket.join(LOBBY);
    }

    socket.on('login', (...raw) => {
      const [args, ack] = split(raw);
      const [checked, error] = checkLabel(
        args[0], 'login needs a name (a string)', 'the name must not be empty', MAX_NAME, 'the name');
      if (error) return fail(error, ack);
      socket.data.name = checked;
      socket.emit('serverMessage', `Currently logged in as ${checked}`);
      socket.to(here()).emit('serverMessage', `User ${checked} Logged in`);
      if (ack) ack({ ok: true });
    });

    socket.on('join', (...raw) => {
      const [args, ack] = split(raw);
      const [checked, error] = checkLabel(
        args[0], 'join needs a room name (a string)', 'the room name must not be empty', MAX_ROOM, 'the room name');
      if (error) return fail(error, ack);
      socket.leave(here());
      socket.data.room = checked;
      socket.join(checked);
      socket.emit('serverMessage', 'joined room success!');
      if (ack) ack({ ok: true });
    });

    socket.on('clientMessage', (...raw) => {
      const [args, ack] = split(raw);
      const text = args[0];
      if (typeof text !== 'string') return fail('a message must be a string', ack);
      if (tooLong(text, MAX_MESSAGE)) return fail(`a message must be at most ${MAX_MESSAGE} characters`, ack);
      socket.emit('serverMessage', `You said: ${text}`);
      socket.to(here()).emit('serverMessage', `${who()} said: ${text}`);
      if (ack) ack({ ok: true });
    });

    // The chapter's server logs `my event`; other events are ignored.
    socket.on('my event', (content) => console.log(content));

    // The benchmarks' "acks handled in JavaScript" (BENCH_ECHO=1 only):
    // `echo` answers its ack with the event's own arguments.
    if (ECHO) {
      socket.on('echo', (...args) => {
        const ack = args.pop();
        if (typeof ack === 'function') ack(...args);
      });
    }

    socket.on('disconnect', () => {
      socket.to(here()).emit('serverMessage', `User ${who()} disconnected`);
    });
  });
}

// With REDIS_URL, the Redis adapter is in place before any namespace is
// made (an adapter applies to the namespaces made after it is set).
async function redisAdapter(url) {
  const { createClient, createCluster } = require('redis');
  if (process.env.REDIS_CLUSTER === '1') {
    const pub = createCluster({ rootNodes: [{ url }] });
    const sub = pub.duplicate();
    pub.on('error', (e) => console.error(`redis: ${e.message}`));
    sub.on('error', (e) => console.error(`redis: ${e.message}`));
    await Promise.all([pub.connect(), sub.connect()]);
    return require('@socket.io/redis-adapter').createShardedAdapter(pub, sub);
  }
  const pub = createClient({ url });
  const sub = pub.duplicate();
  pub.on('error', (e) => console.error(`redis: ${e.message}`));
  sub.on('error', (e) => console.error(`redis: ${e.message}`));
  await Promise.all([pub.connect(), sub.connect()]);
  if (process.env.REDIS_SHARDED === '1') {
    return require('@socket.io/redis-adapter').createShardedAdapter(pub, sub);
  }
  return require('@socket.io/redis-adapter').createAdapter(pub, sub);
}

async function main() {
  if (REDIS_URL) io.adapter(await redisAdapter(REDIS_URL));
  for (const ns of NAMESPACES) chat(io.of(ns));
  server.listen(PORT, HOST, () => {
    const { address, port } = server.address();
    console.log(`socket.io reference chat server listening on http://${address}:${port}/`);
  });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

function stop() {
  io.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
