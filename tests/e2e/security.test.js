'use strict';
// The attacks of issue 12, tried as an attacker would against every face:
// the Rust example, the C example and the Node-attached hub (the Node
// example). Each must refuse them as the README's security section says.
// (The browser's side of them is in security-browser.test.js.)

const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const path = require('node:path');
const fs = require('node:fs');
const WebSocket = require('ws');
const { EXAMPLES, ROOT, TARGET_DIR, client, startServer, within } = require('./helpers');

const HOSTS = ['rust', 'node', ...(EXAMPLES.c ? ['c'] : [])];
/** The request timeout the hosts get here (REQUEST_TIMEOUT_MS). */
const REQUEST_TIMEOUT_MS = 1500;

function wsUrl(url) {
  return `${url.replace('http://', 'ws://')}/socket.io/?EIO=4&transport=websocket`;
}

/**
 * A raw Engine.IO WebSocket: frames as they come (pings answered), and the
 * close code. `next(pred)` resolves with the next frame `pred` accepts.
 */
function raw(url, opts = {}) {
  const ws = new WebSocket(wsUrl(url), opts);
  const inbox = [];
  const waiting = [];
  const push = (item) => {
    const i = waiting.findIndex((w) => w.pred(item));
    if (i >= 0) waiting.splice(i, 1)[0].resolve(item);
    else inbox.push(item);
  };
  ws.on('message', (data, isBinary) => {
    const text = isBinary ? null : data.toString();
    if (text === '2') {
      ws.send('3');
      return;
    }
    push({ text, data });
  });
  ws.on('close', (code) => push({ closed: code }));
  ws.on('error', () => {});
  const opened = new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('unexpected-response', (req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
    ws.once('error', reject);
  });
  const api = {
    ws,
    opened,
    next(pred, what = 'a frame') {
      const i = inbox.findIndex(pred);
      if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0]);
      return within(new Promise((resolve) => waiting.push({ pred, resolve })), what);
    },
    text: (what) => api.next((f) => typeof f.text === 'string', what).then((f) => f.text),
    closed: () => api.next((f) => f.closed !== undefined, 'the close').then((f) => f.closed),
    /** Opens, joins `/chat` and reads CONNECT and the prompt. */
    async chat() {
      await opened;
      await api.text('the open packet');
      ws.send('40/chat,');
      assert.match(await api.text('CONNECT'), /^40\/chat,\{"sid":/);
      assert.equal(await api.text('the prompt'), '42/chat,["login"]');
    },
  };
  return api;
}

/** Opens a long-polling session; its sid. */
async function pollingSession(url) {
  const body = await (await fetch(`${url}/socket.io/?EIO=4&transport=polling`)).text();
  return JSON.parse(body.slice(1)).sid;
}

/** Resolves once `socket` is closed by the other side (what it sent is
 * read and dropped: a paused socket would never see its end). */
function closedBy(socket) {
  return new Promise((resolve) => {
    if (socket.destroyed) resolve();
    socket.on('close', resolve);
    socket.resume();
  });
}

for (const name of HOSTS) {
  test(`the ${name} face refuses issue 12's attacks`, async (t) => {
    const host = await EXAMPLES[name]({ REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS) });
    t.after(() => host.stop());
    const { url } = host;

    await t.test('a socket id is not a session id: using it as one gets "Session ID unknown"', async () => {
      const victim = client(url, '/chat', { transports: ['polling'] });
      try {
        await victim.loginPrompt();
        const id = victim.socket.id;
        assert.notEqual(id, victim.socket.io.engine.id, 'the socket id is not the session id');
        const as = `${url}/socket.io/?EIO=4&transport=polling&sid=${encodeURIComponent(id)}`;
        for (const init of [{ method: 'POST', body: '42/chat,["login","attacker"]' }, {}]) {
          const r = await fetch(as, init);
          assert.equal(r.status, 400);
          assert.deepEqual(await r.json(), { code: 1, message: 'Session ID unknown' });
        }
        // Its own session goes on, with its own name.
        victim.socket.emit('login', 'victim');
        await victim.expectLine('Currently logged in as victim');
      } finally {
        victim.close();
      }
    });

    await t.test('binary packets are bounded: count and size', async () => {
      // Too many attachments announced: closed at once.
      const many = raw(url);
      await many.chat();
      many.ws.send('451001-/chat,["x"]');
      await many.closed();
      // Attachments that add up past maxPayload: closed.
      const big = raw(url);
      await big.chat();
      big.ws.send('452-/chat,["x",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
      big.ws.send(Buffer.alloc(600_000, 1));
      big.ws.send(Buffer.alloc(600_000, 2));
      await big.closed();
      // Within bounds: a binary event goes through (to the host's log).
      const ok = raw(url);
      await ok.chat();
      ok.ws.send('451-/chat,["my event",{"_placeholder":true,"num":0}]');
      ok.ws.send(Buffer.from([1, 2, 3]));
      ok.ws.send('42/chat,["clientMessage","after binary"]');
      assert.equal(await ok.text('the echo'), '42/chat,["serverMessage","You said: after binary"]');
      ok.ws.close();
    });

    await t.test('request heads and bodies that never end are cut within the timeout', async () => {
      const { port } = new URL(url);
      const started = Date.now();
      const sockets = [];
      for (let i = 0; i < 30; i++) {
        // A long-polling POST whose chunked body never ends, on a session
        // of its own.
        const sid = await pollingSession(url);
        const s = net.connect(Number(port), '127.0.0.1');
        s.on('error', () => {});
        s.write(`POST /socket.io/?EIO=4&transport=polling&sid=${sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n`
          + 'Content-Type: text/plain;charset=UTF-8\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n40/\r\n');
        sockets.push(s);
        // A request head that never ends.
        const h = net.connect(Number(port), '127.0.0.1');
        h.on('error', () => {});
        h.write('GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
        sockets.push(h);
      }
      await within(Promise.all(sockets.map(closedBy)), 'every stuck request to be cut', 15_000);
      const took = Date.now() - started;
      t.diagnostic(`${sockets.length} stuck requests cut after ${took} ms (timeout ${REQUEST_TIMEOUT_MS} ms)`);
      assert.ok(took < REQUEST_TIMEOUT_MS + 10_000, `cut in ${took} ms`);
      // New users get in.
      const c = client(url, '/chat');
      await c.login('after the stuck ones');
      c.close();
    });

    await t.test('other origins are refused on both transports; same-origin and no Origin are not', async () => {
      const evil = { origin: 'http://evil.example' };
      const refused = raw(url, evil);
      await assert.rejects(refused.opened, { status: 403 });
      const r = await fetch(`${url}/socket.io/?EIO=4&transport=polling`, { headers: { origin: evil.origin } });
      assert.equal(r.status, 403);
      assert.deepEqual(await r.json(), { code: 4, message: 'Forbidden' });
      const same = raw(url, { origin: url });
      await same.opened;
      assert.match(await same.text('the open packet'), /^0\{"sid"/);
      same.ws.close();
      const plain = raw(url);
      await plain.opened;
      plain.ws.close();
      const ok = await fetch(`${url}/socket.io/?EIO=4&transport=polling`, { headers: { origin: url } });
      assert.equal(ok.status, 200);
    });

    await t.test("an address's aggregate limit cuts the sockets flooding from it", async () => {
      const flooders = [];
      for (let i = 0; i < 50; i++) {
        const c = client(url, '/chat', { transports: ['websocket'] });
        await c.loginPrompt();
        // A room each: their lines reach nobody else.
        await c.join(`flood${i}`);
        flooders.push(c);
      }
      // Each under the per-socket limit (100/s), together far over the
      // address's share (500/s): sockets are cut until what is left fits
      // the share (5 × 95/s does), whatever the order.
      const reasons = [];
      const enough = new Promise((resolve) => {
        for (const c of flooders) {
          c.disconnected().then((reason) => {
            reasons.push(reason);
            if (reasons.length === 45) resolve();
          }, () => {});
        }
      });
      const timers = flooders.map((c) => setInterval(() => c.socket.emit('clientMessage', 'x'), 1000 / 95));
      try {
        await within(enough, '45 of the 50 flooders to be cut', 30_000);
        assert.deepEqual([...new Set(reasons)], ['io server disconnect'], 'cut by the hub');
        t.diagnostic(`${reasons.length} of 50 flooding sockets cut`);
      } finally {
        timers.forEach(clearInterval);
        flooders.forEach((c) => c.close());
      }
      // Someone else, well within the limits, chats on.
      const c = client(url, '/chat');
      await c.login('calm');
      await c.say('hello');
      c.close();
    });

    await t.test('client text is logged with its control characters escaped', async () => {
      const c = client(url, '/chat');
      try {
        await c.loginPrompt();
        const forged = 'x\n[/chat] root logged in as admin\u001b[2J';
        c.socket.emit('login', forged);
        await c.expectLine(`Currently logged in as ${forged}`);
        await host.waitForLine(/logged in as x\\u000a\[\/chat\] root logged in as admin\\u001b\[2J$/);
        assert.ok(!host.lines.some((l) => l.startsWith('[/chat] root')), 'no forged line');
      } finally {
        c.close();
      }
    });

    await t.test('odd but valid input: NUL in an event name, lone surrogates, invalid UTF-8', async () => {
      const c = client(url, '/chat');
      try {
        await c.login('odd');
        c.socket.emit('a\u0000b', 1);
        await c.expectLine('Error: an event name must not contain NUL characters');
        // A lone surrogate passes as Node passes it: echoed as sent.
        await c.say('half \ud800 a pair');
        await c.say('still here');
      } finally {
        c.close();
      }
      const bad = raw(url);
      await bad.chat();
      bad.ws.send(Buffer.from([0x34, 0x32, 0xff, 0xfe]), { binary: false });
      assert.equal(await bad.closed(), 1007);
    });
  });
}

/** The example binaries, to run under a memory cap. */
const CAPPED = {
  rust: path.join(TARGET_DIR, 'debug', 'examples', 'chat-server'),
  c: path.join(ROOT, 'examples', 'c', 'chat_server'),
};

for (const [name, bin] of Object.entries(CAPPED)) {
  const skip = !fs.existsSync(bin) && `the ${name} example is not built`;
  test(`300 attachment holders under a 2.5 GB address-space cap leave the ${name} example serving`, { skip }, async (t) => {
    // `prlimit --as`: what the hub may map in all. Each holder announces
    // two attachments and sends one of ~900 KB, then waits.
    const host = await startServer('prlimit', [`--as=${2_500_000_000}`, bin], { FLOOD_LIMITS: 'off' });
    t.after(() => host.stop());
    const holders = [];
    for (let i = 0; i < 300; i++) {
      const h = raw(host.url);
      await h.chat();
      h.ws.send('452-/chat,["x",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
      h.ws.send(Buffer.alloc(900_000, i & 0xff));
      holders.push(h);
    }
    try {
      const c = client(host.url, '/chat');
      await c.login('alive');
      await c.say('still serving');
      c.close();
      const status = fs.readFileSync(`/proc/${host.child.pid}/status`, 'utf8');
      const rss = Number(/VmRSS:\s+(\d+)/.exec(status)[1]) * 1024;
      t.diagnostic(`RSS with 300 holders: ${(rss / 1e6).toFixed(0)} MB`);
    } finally {
      holders.forEach((h) => h.ws.terminate());
    }
  });
}
