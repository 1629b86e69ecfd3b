'use strict';
// The chapter's chat server, on Node's own http server, with the Socket.IO
// part handed to chathub's Rust hub: `hub.attach(server)` where the chapter
// has `require('socket.io')(server)`.
//
//   node examples/node/chat-server.js        (PORT=3000 by default)
//   FLOOD_LIMITS=off node examples/node/chat-server.js   (for load generators: no flood
//                                                         or per-address limits)
//   REQUEST_TIMEOUT_MS=5000 node examples/node/chat-server.js   (time for a request's
//                                                         head and body; default 30 s)
//   RECOVERY=on node examples/node/chat-server.js   (a dropped client comes back with its
//                                                    name, room and every line it missed)
//   TLS_CERT=cert.pem TLS_KEY=key.pem node examples/node/chat-server.js   (an https
//                                   server; SIGHUP re-reads both files)
//   METRICS_PATH=/metrics node examples/node/chat-server.js   (Prometheus metrics on the
//                                                              chat's port)
//   METRICS_BIND=127.0.0.1:9100 node examples/node/chat-server.js   (Prometheus metrics on
//                                                                    a port of their own)
//   HANDLERS=hub node examples/node/chat-server.js  (`my event` through hub.onEvent, no
//                                                    socket object per connection)
//
// Open http://127.0.0.1:3000/ in two browser tabs. REDIS_URL, when set,
// joins this hub to others on the same Redis (see the README); with it,
// REDIS_TLS_CA names the CA of a rediss:// Redis, REDIS_BATCH_MS how long
// a busy hub gathers its writes to Redis (default 50, 0: none), and
// REDIS_CLUSTER=1 says REDIS_URL is a node of a Redis Cluster.

const http = require('node:http');
const https = require('node:https');
const fs = require('node:fs');
const path = require('node:path');
const { Hub, logTo } = require('../../node-binding');

const PORT = Number(process.env.PORT ?? 3000);
const HOST = process.env.HOST ?? '127.0.0.1';
// The chapter's page (the same file the Rust hub serves built in).
const PAGE = path.join(__dirname, '..', '..', 'core', 'assets', 'index.html');

function handler(req, res) {
  fs.readFile(PAGE, (err, data) => {
    if (err) {
      res.writeHead(500);
      res.end('Error loading index.html');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(data);
  });
}

// Requests must arrive whole in time: a client that sends a head or a body
// slowly (or never finishes) is cut, as the hub's own listener does. Node's
// defaults (60 s for the head, 300 s for the request, checked every 30 s)
// let such clients hold connections far longer.
const REQUEST_TIMEOUT = Number(process.env.REQUEST_TIMEOUT_MS ?? 30_000);
const serverOptions = {
  headersTimeout: REQUEST_TIMEOUT,
  requestTimeout: REQUEST_TIMEOUT,
  connectionsCheckingInterval: Math.min(REQUEST_TIMEOUT / 2, 30_000),
};
// TLS_CERT and TLS_KEY (PEM files): Node's https server does the TLS and
// hands the hub the decrypted stream, as with http.
const { TLS_CERT, TLS_KEY } = process.env;
const readPair = () => ({ cert: fs.readFileSync(TLS_CERT), key: fs.readFileSync(TLS_KEY) });
const server = TLS_CERT
  ? https.createServer({ ...serverOptions, ...readPair() }, handler)
  : http.createServer(serverOptions, handler);
// FLOOD_LIMITS=off lifts the flood limits, per socket and per address, and
// the per-address connection limit (load generators send far more than
// people do, all from one address).
const floodOff = process.env.FLOOD_LIMITS === 'off'
  ? {
    eventsPerSec: 0, bytesPerSec: 0, floodStrikes: 0,
    ipEventsPerSec: 0, ipBytesPerSec: 0, maxConnectionsPerIp: 0,
  }
  : {};
// The hub's logs to standard error (RUST_LOG filters them): text, or one
// JSON object per line with LOG_FORMAT=json.
logTo(null, null, { format: process.env.LOG_FORMAT === 'json' ? 'json' : 'plain' });

const hub = new Hub({
  redisUrl: process.env.REDIS_URL || undefined,
  // REDIS_TLS_CA: the CA a rediss:// Redis chains to (a PEM file).
  redisTlsCa: process.env.REDIS_TLS_CA || undefined,
  // REDIS_CLUSTER=1: REDIS_URL is a node of a Redis Cluster (sharded pub/sub).
  redisCluster: ['1', 'true', 'on', 'yes'].includes(process.env.REDIS_CLUSTER || ''),
  // REDIS_BATCH_MS: how long a busy hub gathers lines into one Redis
  // pipeline (default 50; 0: none).
  redisBatch: process.env.REDIS_BATCH_MS ? Number(process.env.REDIS_BATCH_MS) : undefined,
  requestTimeout: REQUEST_TIMEOUT,
  // RECOVERY=on: a client whose connection dropped comes back within two
  // minutes with its name and room, and gets every line it missed.
  recovery: process.env.RECOVERY === 'on',
  // METRICS_PATH=/metrics: Prometheus metrics on this server's port;
  // METRICS_BIND=IP:PORT: on a listener of their own. Off by default.
  metricsPath: process.env.METRICS_PATH || undefined,
  metricsBind: process.env.METRICS_BIND || undefined,
  ...floodOff,
});
hub.attach(server);

// Names, rooms and texts come from clients: control characters are written
// as escapes, so that no client can forge log lines or send escapes to the
// terminal.
const clean = (s) => String(s).replace(/[\u0000-\u001f\u007f-\u009f]/g,
  (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

// Log what happens, as the chapter's server logs `my event` (QUIET=1: only
// that, so that printing does not weigh on benchmarks).
if (!process.env.QUIET) {
  hub.on('connection', (e) => console.log(`[${e.ns}] ${e.sid} ${e.recovered ? 'is back' : 'connected'}`));
  hub.on('login', (e) => console.log(`[${e.ns}] ${e.sid} logged in as ${clean(e.name)}`));
  hub.on('join', (e) => console.log(`[${e.ns}] ${clean(e.name ?? e.sid)} joined ${clean(e.to ?? 'the lobby')}`));
  hub.on('message', (e) => console.log(`[${e.ns}] ${clean(e.name ?? e.sid)}: ${clean(e.text)}`));
  hub.on('disconnect', (e) => console.log(`[${e.ns}] ${clean(e.name ?? e.sid)} disconnected (${e.reason})`));
}
hub.on('cluster', (e) => console.log(`redis link ${e.up ? 'up' : 'down'}: ${e.detail}`));
// The chapter's `my event` log, in socket.io's form: a socket object per
// connection, its handlers on it. HANDLERS=hub takes the hub-level form
// instead, `hub.onEvent(event, (socket, ...args) => …)`, which builds no
// socket object (bench/run.py's "nodehub" server compares the two).
if (process.env.HANDLERS === 'hub') {
  hub.onEvent('my event', (socket, content) => {
    console.log(typeof content === 'string' ? clean(content) : content);
  });
} else {
  for (const ns of hub.namespaces) {
    hub.of(ns).on('connection', (socket) => {
      socket.on('my event', (content) => {
        console.log(typeof content === 'string' ? clean(content) : content);
      });
    });
  }
}

// Benchmarks only (bench/run.py's "acks" scenario, BENCH_ECHO=1): `echo`
// answers its ack with the event's own arguments, in JavaScript, as the
// socket.io reference does.
if (process.env.BENCH_ECHO === '1') {
  for (const ns of hub.namespaces) {
    hub.of(ns).on('connection', (socket) => {
      socket.on('echo', (...args) => {
        const ack = args.pop();
        if (typeof ack === 'function') ack(...args);
      });
    });
  }
}

server.listen(PORT, HOST, () => {
  const { address, port } = server.address();
  const scheme = TLS_CERT ? 'https' : 'http';
  console.log(`chathub Node chat server listening on ${scheme}://${address}:${port}/`);
  if (process.env.METRICS_PATH) console.log(`metrics at ${scheme}://${address}:${port}${process.env.METRICS_PATH}`);
  if (hub.metricsAddress) console.log(`metrics at http://${hub.metricsAddress}${process.env.METRICS_PATH || '/metrics'}`);
});

// SIGHUP: read the certificate and key again (new connections get them).
process.on('SIGHUP', () => {
  if (!TLS_CERT) return;
  try {
    server.setSecureContext(readPair());
    console.log('TLS certificate reloaded');
  } catch (err) {
    console.error(`TLS certificate not reloaded: ${err.message} (${TLS_CERT}, ${TLS_KEY})`);
  }
});

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  // The hub first: its connections close (clients reconnect once the
  // server is back) while the server still carries their requests; then
  // the server.
  // The process then ends by itself once the last response is written.
  hub.close().then(() => {
    server.close();
    server.closeIdleConnections();
    console.log('chathub stopped');
    setTimeout(() => process.exit(0), 2000).unref();
  });
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
