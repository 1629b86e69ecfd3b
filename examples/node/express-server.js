'use strict';
// The chapter's chat with Express: the app keeps its routes, the hub takes
// /socket.io/ on the same port.
//
//   node examples/node/express-server.js     (PORT=3000 by default)

const path = require('node:path');
const express = require('express');
const { Hub } = require('../../node-binding');

const PORT = Number(process.env.PORT ?? 3000);
const HOST = process.env.HOST ?? '127.0.0.1';

const app = express();
app.get('/', (req, res) => res.sendFile(path.join(__dirname, '..', '..', 'core', 'assets', 'index.html')));
app.get('/health', (req, res) => res.json({ ok: true, sockets: hub.socketCount }));

const hub = new Hub({ redisUrl: process.env.REDIS_URL || undefined });
hub.onEvent('my event', (socket, content) => console.log(content));
hub.on('message', (e) => console.log(`[${e.ns}] ${e.name ?? e.sid}: ${e.text}`));

const server = app.listen(PORT, HOST, () => {
  const { address, port } = server.address();
  console.log(`chathub Express chat server listening on http://${address}:${port}/`);
});
hub.attach(server);

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
    setTimeout(() => process.exit(0), 2000).unref();
  });
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
