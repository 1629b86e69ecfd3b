'use strict';
// The chapter's chat server, on Node's own http server, with the Socket.IO
// part handed to chathub's Rust hub: `hub.attach(server)` where the chapter
// has `require('socket.io')(server)`.
//
//   node examples/node/chat-server.js        (PORT=3000 by default)
//   FLOOD_LIMITS=off node examples/node/chat-server.js   (for load generators)
//
// Open http://127.0.0.1:3000/ in two browser tabs. REDIS_URL, when set,
// joins this hub to others on the same Redis (see the README).

const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');
const { Hub } = require('../../node-binding');

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

const server = http.createServer(handler);
// FLOOD_LIMITS=off lifts the per-socket flood limits (load generators send
// far more than people do).
const floodOff = process.env.FLOOD_LIMITS === 'off'
  ? { eventsPerSec: 0, bytesPerSec: 0, floodStrikes: 0 }
  : {};
const hub = new Hub({ redisUrl: process.env.REDIS_URL || undefined, ...floodOff });
hub.attach(server);

// Log what happens, as the chapter's server logs `my event` (QUIET=1: only
// that, so that printing does not weigh on benchmarks).
if (!process.env.QUIET) {
  hub.on('connection', (e) => console.log(`[${e.ns}] ${e.sid} connected`));
  hub.on('login', (e) => console.log(`[${e.ns}] ${e.sid} logged in as ${e.name}`));
  hub.on('join', (e) => console.log(`[${e.ns}] ${e.name ?? e.sid} joined ${e.to ?? 'the lobby'}`));
  hub.on('message', (e) => console.log(`[${e.ns}] ${e.name ?? e.sid}: ${e.text}`));
  hub.on('disconnect', (e) => console.log(`[${e.ns}] ${e.name ?? e.sid} disconnected (${e.reason})`));
}
hub.on('cluster', (e) => console.log(`redis link ${e.up ? 'up' : 'down'}: ${e.detail}`));
hub.onEvent('my event', (socket, content) => {
  console.log(content);
});

server.listen(PORT, HOST, () => {
  const { address, port } = server.address();
  console.log(`chathub Node chat server listening on http://${address}:${port}/`);
});

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  // The hub first: its clients get their disconnect while the server still
  // carries their requests; then the server.
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
