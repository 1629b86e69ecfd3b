'use strict';
// The chapter's chat with Express: the app keeps its routes, the hub takes
// /socket.io/ on the same port.
//
//   node examples/node/express-server.js     (PORT=3000 by default)
//   METRICS_PATH=/metrics node examples/node/express-server.js   (Prometheus metrics;
//                                          METRICS_BIND=IP:PORT: on a port of their own)

const path = require('node:path');
const express = require('express');
const { Hub } = require('../../node-binding');

const PORT = Number(process.env.PORT ?? 3000);
const HOST = process.env.HOST ?? '127.0.0.1';

const app = express();
app.get('/', (req, res) => res.sendFile(path.join(__dirname, '..', '..', 'core', 'assets', 'index.html')));
app.get('/health', (req, res) => res.json({ ok: true, sockets: hub.socketCount }));

const hub = new Hub({
  redisUrl: process.env.REDIS_URL || undefined,
  metricsPath: process.env.METRICS_PATH || undefined,
  metricsBind: process.env.METRICS_BIND || undefined,
});
// Text from clients, with control characters escaped (no forged log lines).
const clean = (s) => String(s).replace(/[\u0000-\u001f\u007f-\u009f]/g,
  (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
hub.onEvent('my event', (socket, content) => console.log(typeof content === 'string' ? clean(content) : content));
hub.on('message', (e) => console.log(`[${e.ns}] ${clean(e.name ?? e.sid)}: ${clean(e.text)}`));

const server = app.listen(PORT, HOST, () => {
  const { address, port } = server.address();
  console.log(`chathub Express chat server listening on http://${address}:${port}/`);
  if (process.env.METRICS_PATH) console.log(`metrics at http://${address}:${port}${process.env.METRICS_PATH}`);
  if (hub.metricsAddress) console.log(`metrics at http://${hub.metricsAddress}${process.env.METRICS_PATH || '/metrics'}`);
});
hub.attach(server);

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
    setTimeout(() => process.exit(0), 2000).unref();
  });
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
