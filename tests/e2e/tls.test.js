'use strict';
// TLS (TLS_CERT, TLS_KEY) in every example: the hub's own listener in the
// Rust and C ones, Node's https server in the Node one. The chat over wss:// and over polling https:// with
// socket.io-client trusting a test CA, the page in a real headless Chromium
// over https://, and a renewed certificate served to new connections after
// SIGHUP while the open ones go on.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const tls = require('node:tls');
const { EXAMPLES, client, within } = require('./helpers');
const { makeCa } = require('./certs');
const { launch, openChat } = require('./browser');
const { RedisServer } = require('./redis');

const FACES = ['rust', 'node', 'c'].filter((f) => EXAMPLES[f]);

/** The certificate a new TLS connection to `url` is served, and its ALPN. */
function handshake(url, ca) {
  const { port } = new URL(url);
  return within(new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1', port: Number(port), servername: 'localhost', ca, ALPNProtocols: ['h2', 'http/1.1'],
    }, () => {
      const seen = { fingerprint: socket.getPeerCertificate().fingerprint256, alpn: socket.alpnProtocol };
      socket.end();
      resolve(seen);
    });
    socket.on('error', reject);
  }), 'a TLS handshake');
}

for (const face of FACES) {
  test(`${face}: the chat over wss:// and https:// polling; a renewed certificate after SIGHUP`, async () => {
    const ca = makeCa();
    const first = ca.issue('first');
    const second = ca.issue('second');
    // The files the server reads: the first pair now, the second later.
    const cert = `${ca.dir}/serving.pem`;
    const key = `${ca.dir}/serving.key`;
    fs.copyFileSync(first.cert, cert);
    fs.copyFileSync(first.key, key);
    const server = await EXAMPLES[face]({ TLS_CERT: cert, TLS_KEY: key });
    const clients = [];
    try {
      assert.match(server.url, /^https:\/\//);
      assert.deepEqual(await handshake(server.url, ca.pem), { fingerprint: first.fingerprint, alpn: 'http/1.1' });

      // Plain HTTP on the TLS port gets no answer a client could take.
      await assert.rejects(fetch(server.url.replace('https:', 'http:') + '/health'));
      // Without the CA, the certificate is refused: the check is real.
      const untrusting = client(server.url, '/chat', { transports: ['websocket'] });
      clients.push(untrusting);
      assert.match(await untrusting.connectError(), /websocket error|certificate/i);

      const ann = client(server.url, '/chat', { transports: ['websocket'], ca: ca.pem });
      const bob = client(server.url, '/chat', { transports: ['polling'], ca: ca.pem });
      clients.push(ann, bob);
      await ann.login('ann');
      await bob.login('bob');
      await ann.expectLine('User bob Logged in');
      await ann.say('over wss');
      await bob.expectLine('ann said: over wss');
      await bob.say('over https polling');
      await ann.expectLine('bob said: over https polling');

      // A renewed certificate: new connections get it, open ones go on.
      fs.copyFileSync(second.cert, cert);
      fs.copyFileSync(second.key, key);
      server.child.kill('SIGHUP');
      await server.waitForLine(/^TLS certificate reloaded$/);
      assert.equal((await handshake(server.url, ca.pem)).fingerprint, second.fingerprint);
      await ann.say('after the renewal');
      await bob.expectLine('ann said: after the renewal');
      const cid = client(server.url, '/chat', { transports: ['websocket'], ca: ca.pem });
      clients.push(cid);
      await cid.login('cid');

      // A broken pair is refused with the reason; the hub keeps the one it had.
      fs.writeFileSync(key, 'not a key');
      server.child.kill('SIGHUP');
      await within((async () => {
        while (!/TLS certificate not reloaded/.test(server.stderr())) {
          await new Promise((resolve) => server.child.stderr.once('data', resolve));
        }
      })(), 'the refused reload in the logs');
      assert.match(server.stderr(), /TLS certificate not reloaded.*serving\.key/);
      assert.equal((await handshake(server.url, ca.pem)).fingerprint, second.fingerprint);
    } finally {
      for (const c of clients) c.close();
      await server.stop();
      ca.remove();
    }
  });
}

test('rust: the chat page in headless Chromium over https://', async () => {
  const ca = makeCa();
  const leaf = ca.issue('page');
  const server = await EXAMPLES.rust({ TLS_CERT: leaf.cert, TLS_KEY: leaf.key });
  // Chromium trusts this one certificate's key, and nothing else (no
  // blanket --ignore-certificate-errors).
  const browser = await launch([`--ignore-certificate-errors-spki-list=${leaf.spki}`]);
  try {
    const url = server.url.replace('127.0.0.1', 'localhost');
    const ann = await openChat(browser, `${url}/`, 'ann');
    const bob = await openChat(browser, `${url}/`, 'bob');
    await ann.waitForLine('User bob Logged in');
    await bob.type('hello over https');
    await ann.waitForLine('bob said: hello over https');
    assert.equal(await ann.page.evaluate(() => location.protocol), 'https:');
    await ann.close();
    await bob.waitForLine('User ann disconnected');
    await bob.close();
  } finally {
    await browser.close();
    await server.stop();
    ca.remove();
  }
});

test('every example joins the others over rediss:// with REDIS_TLS_CA', async () => {
  const ca = makeCa();
  const leaf = ca.issue('redis');
  const redis = await RedisServer.start({ cert: leaf.cert, key: leaf.key, ca: ca.cert });
  const servers = [];
  const clients = [];
  try {
    for (const face of ['rust', 'node', 'c'].filter((f) => EXAMPLES[f])) {
      servers.push(await EXAMPLES[face]({ REDIS_URL: redis.url, REDIS_TLS_CA: ca.cert }));
    }
    assert.ok(servers.length >= 2, 'at least two examples');
    // Every client is in before anyone logs in; login notices from the
    // other hubs may then come at any point (a hub gathers its Redis
    // writes for up to redis_batch), so the lines awaited skip them.
    const users = servers.map((server) => client(server.url, '/chat', { transports: ['websocket'] }));
    clients.push(...users);
    await Promise.all(users.map((c) => c.loginPrompt()));
    const notices = new Map(users.map((c) => [c, new Set()]));
    const awaitLine = async (c, text) => {
      if (notices.get(c).delete(text)) return;
      for (;;) {
        const line = await c.line();
        if (line === text) return;
        assert.match(line, /^User u\d Logged in$/, `waiting for ${JSON.stringify(text)}`);
        notices.get(c).add(line);
      }
    };
    for (const [i, c] of users.entries()) {
      c.socket.emit('login', `u${i}`);
      await awaitLine(c, `Currently logged in as u${i}`);
    }
    for (const [i, c] of users.entries()) {
      for (const j of users.keys()) if (j !== i) await awaitLine(c, `User u${j} Logged in`);
    }
    users[0].socket.emit('clientMessage', 'over rediss');
    await awaitLine(users[0], 'You said: over rediss');
    for (const other of users.slice(1)) await awaitLine(other, 'u0 said: over rediss');
  } finally {
    for (const c of clients) c.close();
    for (const server of servers) await server.stop();
    await redis.stop();
    ca.remove();
  }
});
