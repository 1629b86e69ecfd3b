'use strict';
// A hub with namespaces of its own only (no chat), attached to a Node http
// server: the server the official Socket.IO protocol test suite expects
// (its Readme's setup), and an example of host namespaces in Node.
//
//   PORT=3000 node examples/node/protocol-host.js
//
// `/` and `/custom` emit `auth` (the handshake's payload) to each socket
// that connects; on `/`, `message` is sent back as `message-back` and
// `message-with-ack` is acknowledged with its own arguments. Ping interval
// 300 ms, ping timeout 200 ms, maxPayload 1,000,000, connect timeout 1 s,
// any origin.

const http = require('node:http');
const { Hub } = require('../../node-binding');

const PORT = Number(process.env.PORT ?? 3000);
const server = http.createServer((req, res) => {
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end('not found');
});
const hub = new Hub({
  namespaces: [],
  hostNamespaces: ['/', '/custom'],
  pingInterval: 300,
  pingTimeout: 200,
  maxPayload: 1_000_000,
  connectTimeout: 1000,
  corsOrigins: ['*'],
});
hub.attach(server);

hub.on('connection', (e) => hub.of(e.ns).socket(e.sid).emit('auth', e.auth));
hub.onEvent('message', (socket, ...args) => {
  if (socket.ns === '/') socket.emit('message-back', ...args);
});
hub.onEvent('message-with-ack', (socket, ...args) => {
  const ack = args.pop();
  if (socket.ns === '/' && typeof ack === 'function') ack(...args);
});

server.listen(PORT, '127.0.0.1', () => {
  console.log(`chathub Node protocol host listening on http://127.0.0.1:${server.address().port}/`);
});
function stop() {
  hub.close().then(() => {
    server.close();
    server.closeAllConnections();
    console.log('chathub stopped');
  });
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
