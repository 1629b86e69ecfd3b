'use strict';
// Engine.IO v4 and Socket.IO v5 conformance, written from the two specs
// (not from any test suite), against a host on each face that runs only
// namespaces of its own, set up as the official protocol suite's Readme
// says: ping interval 300 ms, ping timeout 200 ms, maxPayload 1,000,000,
// connect timeout 1 s; `/` and `/custom` emit `auth` on connect, and on
// `/` `message` comes back as `message-back` and `message-with-ack` is
// acknowledged with its arguments.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const WebSocket = require('ws');
const { ROOT, TARGET_DIR, startServer, within } = require('./helpers');

const HOSTS = {
  rust: () => startServer(path.join(TARGET_DIR, 'debug', 'examples', 'protocol-host'), []),
  node: () => startServer(process.execPath, [path.join(ROOT, 'examples', 'node', 'protocol-host.js')]),
  c: () => startServer(process.env.CHATHUB_C_PROTOCOL_HOST || path.join(TARGET_DIR, 'c-tests', 'protocol_host'), []),
};
const PING_INTERVAL = 300;
const PING_TIMEOUT = 200;

/** A WebSocket speaking raw Engine.IO: every frame kept in order. */
function socket(base, query = '') {
  const ws = new WebSocket(`${base.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket${query}`);
  ws.binaryType = 'nodebuffer';
  const frames = [];
  const waiters = [];
  const deliver = () => {
    while (waiters.length && frames.length) waiters.shift()(frames.shift());
  };
  ws.on('message', (data, binary) => {
    frames.push(binary ? Buffer.from(data) : data.toString());
    deliver();
  });
  ws.on('close', (code) => {
    frames.push({ closed: code });
    deliver();
  });
  ws.on('error', () => {});
  return {
    ws,
    at: Date.now(),
    /** The next frame (a string, a Buffer, or `{ closed }`). */
    next(what = 'a frame') {
      if (frames.length) return Promise.resolve(frames.shift());
      return within(new Promise((resolve) => waiters.push(resolve)), what);
    },
    /** The next frame that is not a ping. */
    async packet(what) {
      for (;;) {
        const f = await this.next(what);
        if (f !== '2') return f;
      }
    },
    send: (data) => ws.send(data),
    opened: new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('unexpected-response', (req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
    }),
  };
}

/** A Socket.IO session on `/` over a WebSocket: the open packet, CONNECT, `auth`. */
async function connected(base, connect = '40') {
  const s = socket(base);
  const open = await s.next('the open packet');
  assert.match(open, /^0\{/);
  s.send(connect);
  const answer = await s.packet('the CONNECT answer');
  const auth = await s.packet('the auth packet');
  return { s, open: JSON.parse(open.slice(1)), answer, auth };
}

async function get(base, sid) {
  const r = await fetch(`${base}/socket.io/?EIO=4&transport=polling&sid=${sid}`);
  return { status: r.status, body: await r.text(), type: r.headers.get('content-type') };
}

async function post(base, sid, body) {
  const r = await fetch(`${base}/socket.io/?EIO=4&transport=polling&sid=${sid}`, { method: 'POST', body });
  return { status: r.status, body: await r.text() };
}

/** Long-polls until `n` packets came (the host answers from its own
 * thread: its packets may come in later polls than the hub's own). */
async function collect(base, sid, n) {
  const packets = [];
  while (packets.length < n) {
    const r = await get(base, sid);
    assert.equal(r.status, 200, r.body);
    packets.push(...r.body.split('\x1e').filter((p) => p !== '2'));
  }
  return packets;
}

async function handshake(base) {
  const r = await fetch(`${base}/socket.io/?EIO=4&transport=polling`);
  const body = await r.text();
  return { status: r.status, body, type: r.headers.get('content-type'), open: JSON.parse(body.slice(1)) };
}

async function error(url, init) {
  const r = await fetch(url, init);
  return { status: r.status, json: await r.json().catch(() => null) };
}

for (const [name, start] of Object.entries(HOSTS)) {
  const bin = name === 'c' && (process.env.CHATHUB_C_PROTOCOL_HOST || path.join(TARGET_DIR, 'c-tests', 'protocol_host'));
  const skip = bin && !fs.existsSync(bin) && 'the C protocol host is not built (scripts/test-c.sh builds it)';
  test(`Engine.IO and Socket.IO as the specs say, through the ${name} face`, { skip }, async (t) => {
    const host = await start();
    t.after(() => host.stop());
    const base = host.url;
    const eio = `${base}/socket.io/`;

    await t.test('handshake: the open packet over long-polling and WebSocket', async () => {
      const h = await handshake(base);
      assert.equal(h.status, 200);
      assert.match(h.type, /^text\/plain/);
      assert.deepEqual(Object.keys(h.open).sort(), ['maxPayload', 'pingInterval', 'pingTimeout', 'sid', 'upgrades']);
      assert.match(h.open.sid, /^[\w-]{20}$/);
      assert.deepEqual(h.open.upgrades, ['websocket']);
      assert.equal(h.open.pingInterval, PING_INTERVAL);
      assert.equal(h.open.pingTimeout, PING_TIMEOUT);
      assert.equal(h.open.maxPayload, 1_000_000);
      const s = socket(base);
      const open = JSON.parse((await s.next()).slice(1));
      assert.deepEqual(open.upgrades, []);
      s.ws.close();
    });

    await t.test('every 400 of the Engine.IO spec, with its code', async () => {
      assert.deepEqual(await error(`${eio}?transport=polling`), { status: 400, json: { code: 5, message: 'Unsupported protocol version' } });
      assert.deepEqual(await error(`${eio}?EIO=3&transport=polling`), { status: 400, json: { code: 5, message: 'Unsupported protocol version' } });
      assert.deepEqual(await error(`${eio}?EIO=4`), { status: 400, json: { code: 0, message: 'Transport unknown' } });
      assert.deepEqual(await error(`${eio}?EIO=4&transport=flashsocket`), { status: 400, json: { code: 0, message: 'Transport unknown' } });
      assert.deepEqual(await error(`${eio}?EIO=4&transport=polling`, { method: 'POST', body: '4x' }), { status: 400, json: { code: 2, message: 'Bad handshake method' } });
      assert.deepEqual(await error(`${eio}?EIO=4&transport=polling&sid=nosuchsession0000000`), { status: 400, json: { code: 1, message: 'Session ID unknown' } });
      const { open } = await handshake(base);
      assert.deepEqual(await error(`${eio}?EIO=4&transport=polling&sid=${open.sid}`, { method: 'PUT', body: '' }), { status: 400, json: { code: 3, message: 'Bad request' } });
      // transport=websocket without the WebSocket handshake.
      assert.deepEqual(await error(`${eio}?EIO=4&transport=websocket`), { status: 400, json: { code: 3, message: 'Bad request' } });
      const refused = socket(base, '&EIO=3');
      await assert.rejects(refused.opened, { status: 400 });
    });

    await t.test('heartbeat: the first ping one interval after the handshake; a missing pong closes', async () => {
      const s = socket(base);
      await s.next('the open packet');
      const opened = Date.now();
      assert.equal(await s.next('the first ping'), '2');
      const after = Date.now() - opened;
      assert.ok(after >= PING_INTERVAL - 30, `the first ping came after ${after} ms, not at once`);
      s.send('3');
      assert.equal(await s.next('the second ping'), '2');
      // No pong now: closed once the timeout is over.
      const closed = await s.next('the close');
      assert.ok(closed.closed !== undefined, JSON.stringify(closed));
      // Long-polling: a session nobody polls ends as well.
      const h = await handshake(base);
      const first = await get(base, h.open.sid);
      assert.equal(first.body, '2');
      const gone = await within(new Promise((resolve) => {
        const poll = () => get(base, h.open.sid).then((r) => (r.status === 400 ? resolve(r) : setTimeout(poll, 50)));
        poll();
      }), 'the unanswered session to end');
      assert.equal(gone.status, 400);
    });

    await t.test('long-polling: payloads both ways, duplicate GETs, a forced close', async () => {
      const h = await handshake(base);
      const sid = h.open.sid;
      assert.deepEqual(await post(base, sid, '40\x1e42["message","a",1]\x1e42["message","b"]'), { status: 200, body: 'ok' });
      const packets = await collect(base, sid, 4);
      assert.match(packets[0], /^40\{"sid":"[\w-]{20}"\}$/);
      assert.deepEqual(packets.slice(1), ['42["auth",{}]', '42["message-back","a",1]', '42["message-back","b"]']);
      // Binary in a payload: base64 records, both ways.
      await post(base, sid, '451-["message",{"_placeholder":true,"num":0}]\x1ebAQID');
      assert.deepEqual(await collect(base, sid, 2), ['451-["message-back",{"_placeholder":true,"num":0}]', 'bAQID']);
      // Two GETs at once: the session ends; the first is told, the second refused.
      const [a, b] = await Promise.all([get(base, sid), new Promise((r) => setTimeout(r, 20)).then(() => get(base, sid))]);
      assert.equal(a.status, 200);
      assert.equal(a.body, '1');
      assert.equal(b.status, 400);
      assert.equal((await get(base, sid)).status, 400);
      // The client closes: its waiting GET ends with a noop, then the session is gone.
      const c = (await handshake(base)).open.sid;
      const [waiting] = await Promise.all([get(base, c), post(base, c, '1')]);
      assert.deepEqual([waiting.status, waiting.body], [200, '6']);
      assert.equal((await get(base, c)).status, 400);
      // A body that is not packets ends the session.
      const d = (await handshake(base)).open.sid;
      assert.equal((await post(base, d, 'nonsense')).status, 400);
      assert.equal((await get(base, d)).status, 400);
    });

    await t.test('the upgrade: probe, noop, upgrade; after it polling and a second WebSocket are refused', async () => {
      const h = await handshake(base);
      const sid = h.open.sid;
      await post(base, sid, '40');
      const [connect, auth] = await collect(base, sid, 2);
      assert.match(connect, /^40\{"sid"/);
      assert.equal(auth, '42["auth",{}]');
      const ws = socket(base, `&sid=${sid}`);
      await ws.opened;
      ws.send('2probe');
      assert.equal(await ws.next('3probe'), '3probe');
      // The waiting (or next) GET ends with a noop so that polling pauses.
      const noop = await get(base, sid);
      assert.deepEqual([noop.status, noop.body], [200, '6']);
      ws.send('5');
      ws.send('42["message","over the socket"]');
      assert.equal(await ws.packet('the echo'), '42["message-back","over the socket"]');
      assert.equal((await get(base, sid)).status, 400);
      const again = socket(base, `&sid=${sid}`);
      const closed = await again.next('the close of a second WebSocket');
      assert.ok(closed.closed !== undefined, JSON.stringify(closed));
      ws.ws.close();
    });

    await t.test('maxPayload: a larger packet closes that connection', async () => {
      const s = socket(base);
      await s.next();
      s.send(`4${'x'.repeat(1_000_001)}`);
      const closed = await s.packet('the close');
      assert.equal(closed.closed, 1009);
      const { open } = await handshake(base);
      const r = await post(base, open.sid, `4${'x'.repeat(1_000_001)}`);
      assert.equal(r.status, 413);
    });

    await t.test('namespaces: CONNECT with and without auth, custom, unknown, no CONNECT in time', async () => {
      const main = await connected(base, '40');
      assert.match(main.answer, /^40\{"sid":"[\w-]{20}"\}$/);
      const socketId = JSON.parse(main.answer.slice(2)).sid;
      assert.notEqual(socketId, main.open.sid, 'the socket id is not the session id');
      assert.equal(main.auth, '42["auth",{}]');
      const withAuth = await connected(base, '40{"token":"t"}');
      assert.equal(withAuth.auth, '42["auth",{"token":"t"}]');
      const custom = await connected(base, '40/custom,{"k":[1,2]}');
      assert.match(custom.answer, /^40\/custom,\{"sid":"[\w-]{20}"\}$/);
      assert.equal(custom.auth, '42/custom,["auth",{"k":[1,2]}]');
      const noComma = await connected(base, '40/custom');
      assert.match(noComma.answer, /^40\/custom,\{"sid"/);
      const s = socket(base);
      await s.next();
      s.send('40/nowhere,');
      assert.equal(await s.packet('the refusal'), '44/nowhere,{"message":"Invalid namespace"}');
      // The connection goes on: a namespace that exists still joins.
      s.send('40');
      assert.match(await s.packet('CONNECT'), /^40\{"sid"/);
      // Nothing joined within the connect timeout (1 s): closed.
      const idle = socket(base);
      await idle.next();
      const closed = await idle.packet('the close');
      assert.ok(closed.closed !== undefined);
      for (const c of [main, withAuth, custom, noComma]) c.s.ws.close();
      s.ws.close();
    });

    await t.test('DISCONNECT both ways of a namespace; the others go on', async () => {
      const { s } = await connected(base, '40');
      s.send('40/custom,');
      assert.match(await s.packet(), /^40\/custom,/);
      assert.equal(await s.packet(), '42/custom,["auth",{}]');
      s.send('41/custom,');
      s.send('42/custom,["message","ignored: not joined any more"]');
      s.send('42["message","still here"]');
      assert.equal(await s.packet('the echo on /'), '42["message-back","still here"]');
      // Leaving the last namespace sends nothing back.
      s.send('41');
      assert.equal(await s.next('the next ping'), '2');
      s.ws.close();
    });

    await t.test('events, acks and binary attachments, as sent', async () => {
      const { s } = await connected(base, '40');
      s.send('42["message",1,"2",{"3":[true,null]},"\\u00e9"]');
      assert.equal(await s.packet(), '42["message-back",1,"2",{"3":[true,null]},"é"]');
      s.send('4212["message-with-ack","x",{"y":false}]');
      assert.equal(await s.packet(), '4312["x",{"y":false}]');
      s.send('452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
      s.send(Buffer.from([1, 2, 3]));
      s.send(Buffer.from([4, 5]));
      assert.equal(await s.packet(), '452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
      assert.deepEqual(await s.packet(), Buffer.from([1, 2, 3]));
      assert.deepEqual(await s.packet(), Buffer.from([4, 5]));
      s.send('451-77["message-with-ack",{"_placeholder":true,"num":0}]');
      s.send(Buffer.from([9]));
      assert.equal(await s.packet(), '461-77[{"_placeholder":true,"num":0}]');
      assert.deepEqual(await s.packet(), Buffer.from([9]));
      s.ws.close();
    });

    await t.test('what is not a packet closes the connection', async () => {
      for (const bad of ['4abc', '42{}', '42abc["message-with-ack",1]', '9', '451-["message",{"_placeholder":true,"num":0}]\u0000text']) {
        const { s } = await connected(base, '40');
        if (bad.includes('\u0000')) {
          // A text packet where an attachment is due.
          const [head, text] = bad.split('\u0000');
          s.send(head);
          s.send(`42["${text}"]`);
        } else {
          s.send(bad);
        }
        const closed = await s.packet(`the close after ${bad}`);
        assert.ok(closed.closed !== undefined, `${bad}: ${JSON.stringify(closed)}`);
      }
    });
  });
}
