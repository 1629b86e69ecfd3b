'use strict';
// Test fixture: an http(s) server with its own routes and a hub attached,
// on a free port; real socket.io-client sockets (see tests/e2e/helpers.js).

const http = require('node:http');
const https = require('node:https');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { Hub } = require('..');
const { client, within } = require('../../tests/e2e/helpers');

function appHandler(req, res) {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end(`app: ${req.method} ${req.url}`);
}

/** A self-signed certificate for 127.0.0.1, made with openssl. */
function selfSigned() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chathub-tls-'));
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
    '-days', '1', '-keyout', key, '-out', cert,
  ], { stdio: 'ignore' });
  const pair = { key: fs.readFileSync(key), cert: fs.readFileSync(cert) };
  fs.rmSync(dir, { recursive: true, force: true });
  return pair;
}

/**
 * Starts a server (`http`, `https` or an Express app) with a hub attached.
 * Returns { url, server, hub, close() }.
 */
async function startAttached({ kind = 'http', hubOptions, handler = appHandler } = {}) {
  let server;
  if (kind === 'https') {
    server = https.createServer(selfSigned(), handler);
  } else if (kind === 'express') {
    const express = require('express');
    const app = express();
    app.get('/', (req, res) => res.send('express home'));
    app.get('/api/ping', (req, res) => res.json({ pong: true }));
    server = http.createServer(app);
  } else {
    server = http.createServer(handler);
  }
  const hub = new Hub({ workerThreads: 2, shutdownTimeout: 2000, ...hubOptions });
  hub.attach(server);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const scheme = kind === 'https' ? 'https' : 'http';
  const url = `${scheme}://127.0.0.1:${server.address().port}`;
  return {
    url,
    server,
    hub,
    async close() {
      server.closeAllConnections?.();
      await new Promise((resolve) => server.close(resolve));
      await hub.close();
    },
  };
}

/** Waits for the next hub event `name` matching `pred`. */
function nextEvent(hub, name, pred = () => true) {
  return within(new Promise((resolve) => {
    const listener = (e) => {
      if (pred(e)) {
        hub.off(name, listener);
        resolve(e);
      }
    };
    hub.on(name, listener);
  }), `hub event ${name}`);
}

module.exports = { startAttached, nextEvent, client, within, selfSigned };
