'use strict';
// Same-port delegation: the server keeps its routes, the hub serves
// /socket.io/ over every transport, under http, https and Express.

const test = require('node:test');
const assert = require('node:assert/strict');
const https = require('node:https');
const { startAttached, client } = require('./fixture');

const TRANSPORTS = [
  ['websocket only', { transports: ['websocket'] }],
  ['polling only', { transports: ['polling'] }],
  ['polling upgraded to websocket', {}],
];

async function chatPair(url, opts) {
  const ann = client(url, '/chat', opts);
  await ann.login('ann');
  const bob = client(url, '/chat', opts);
  await bob.login('bob');
  await ann.expectLine('User bob Logged in');
  await bob.say('hi ann');
  await ann.expectLine('bob said: hi ann');
  await ann.join('r');
  await bob.join('r');
  await ann.say('in r');
  await bob.expectLine('ann said: in r');
  return { ann, bob };
}

for (const kind of ['http', 'https', 'express']) {
  test(`${kind}: chat over every transport, the server's routes untouched`, async (t) => {
    const s = await startAttached({ kind });
    t.after(() => s.close());
    const tls = kind === 'https' ? { rejectUnauthorized: false } : {};
    for (const [name, opts] of TRANSPORTS) {
      await t.test(name, async () => {
        const { ann, bob } = await chatPair(s.url, { ...opts, ...tls });
        if (!opts.transports) assert.equal(ann.socket.io.engine.transport.name, 'websocket');
        bob.close();
        await ann.expectLine('User bob disconnected');
        ann.close();
      });
    }
    await t.test('the server still answers its own routes', async () => {
      if (kind === 'https') {
        const body = await new Promise((resolve, reject) => {
          https.get(`${s.url}/hello`, { rejectUnauthorized: false }, (res) => {
            let b = '';
            res.on('data', (d) => { b += d; });
            res.on('end', () => resolve(b));
          }).on('error', reject);
        });
        assert.equal(body, 'app: GET /hello');
      } else if (kind === 'express') {
        assert.equal(await (await fetch(`${s.url}/`)).text(), 'express home');
        assert.deepEqual(await (await fetch(`${s.url}/api/ping`)).json(), { pong: true });
      } else {
        assert.equal(await (await fetch(`${s.url}/hello?x=1`)).text(), 'app: GET /hello?x=1');
        // Paths that only start like ours are the app's too.
        assert.equal(await (await fetch(`${s.url}/socket.iox`)).text(), 'app: GET /socket.iox');
      }
    });
    if (kind === 'http') {
      await t.test('the client bundle is served under /socket.io/', async () => {
        const r = await fetch(`${s.url}/socket.io/socket.io.js`);
        assert.equal(r.status, 200);
        assert.match(await r.text(), /Socket\.IO v4/);
      });
    }
  });
}

test('other upgrade listeners keep their paths', async (t) => {
  const s = await startAttached();
  t.after(() => s.close());
  s.server.on('upgrade', (req, socket) => {
    if (req.url === '/other') {
      socket.end('HTTP/1.1 418 I am a teapot\r\nConnection: close\r\n\r\n');
    }
  });
  const net = require('node:net');
  const port = s.server.address().port;
  const reply = await new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1', () => {
      c.write('GET /other HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
    });
    let data = '';
    c.on('data', (d) => { data += d; });
    c.on('end', () => resolve(data));
    c.on('error', reject);
  });
  assert.match(reply, /^HTTP\/1.1 418/);
  // And the chat still works beside it.
  const c = client(s.url, '/', { transports: ['websocket'] });
  await c.login('still');
  c.close();
});

test('a polling payload over maxPayload ends that request only', async (t) => {
  const s = await startAttached({ hubOptions: { maxPayload: 1000 } });
  t.after(() => s.close());
  const ok = client(s.url, '/', { transports: ['polling'] });
  await ok.login('fine');
  const r = await fetch(`${s.url}/socket.io/?EIO=4&transport=polling&sid=nope`, {
    method: 'POST',
    body: 'x'.repeat(5000),
  });
  assert.equal(r.status, 413);
  await ok.say('unaffected');
  ok.close();
});

test('closing the server closes the hub', async () => {
  const s = await startAttached();
  const c = client(s.url, '/', { transports: ['websocket'] });
  await c.login('x');
  s.server.close();
  // The hub closes the transport without a DISCONNECT, so that clients
  // reconnect (to this server restarted, or another).
  assert.equal(await c.disconnected(), 'transport close');
  c.close();
  await s.hub.close();
  assert.throws(() => s.hub.to('r').emit('x'), /closed/);
});

test('a long-poll whose client goes away is cancelled; the hub goes on', async (t) => {
  const s = await startAttached();
  t.after(() => s.close());
  // Open an Engine.IO session by hand, then start a long-poll and abort it.
  const open = await (await fetch(`${s.url}/socket.io/?EIO=4&transport=polling`)).text();
  const sid = JSON.parse(open.slice(1)).sid;
  const aborter = new AbortController();
  // Nothing is queued (the first ping comes a ping interval later): the
  // poll waits.
  const waiting = fetch(`${s.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`, { signal: aborter.signal });
  aborter.abort();
  await assert.rejects(waiting, { name: 'AbortError' });
  const c = client(s.url, '/', { transports: ['polling'] });
  await c.login('after the abort');
  c.close();
});
