'use strict';
// Creating, misusing and closing a hub; processes that exit.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const http = require('node:http');
const { spawn } = require('node:child_process');
const { Hub } = require('..');
const { startAttached, client, within } = require('./fixture');

test('wrong types and values are TypeErrors and RangeErrors with clear messages', () => {
  assert.throws(() => new Hub('x'), { name: 'TypeError', message: /options must be an object/ });
  assert.throws(() => new Hub({ namespaces: '/chat' }), { name: 'TypeError', message: /namespaces must be an array of strings/ });
  assert.throws(() => new Hub({ pingInterval: -5 }), { name: 'RangeError', message: /pingInterval must be a positive integer/ });
  assert.throws(() => new Hub({ nope: 1 }), { name: 'TypeError', message: /unknown option "nope"/ });
  assert.throws(() => new Hub({ namespaces: ['chat'] }), /must start with '\/'/);
  assert.throws(() => new Hub({ redisBatch: -1 }), { name: 'RangeError', message: /redisBatch must be an integer >= 0/ });
  // redisBatch reaches the core, which checks its range.
  assert.throws(() => new Hub({ redisBatch: 1001 }), /redis_batch must be at most 1 s/);
  new Hub({ redisBatch: 0, workerThreads: 1 }).close();
  const hub = new Hub({ workerThreads: 1 });
  try {
    assert.throws(() => hub.on('nonsense', () => {}), { name: 'TypeError', message: /unknown hub event "nonsense"/ });
    assert.throws(() => hub.on('login', 'not a function'), { name: 'TypeError', message: /listener must be a function/ });
    assert.throws(() => hub.to(5), { name: 'TypeError', message: /the room must be a string, got number/ });
    // Which names are refused is the core's rule: its code and text.
    assert.throws(() => hub.to('r').emit('connect'), { name: 'HubError', code: 'ERR_INVALID_EVENT_NAME', message: /reserved/ });
    assert.throws(() => hub.emit(''), { name: 'HubError', code: 'ERR_INVALID_EVENT_NAME', message: /empty/ });
    assert.throws(() => hub.emit(3), TypeError);
    assert.throws(() => hub.of('/missing'), /unknown namespace "\/missing"/);
    const circular = {};
    circular.self = circular;
    assert.throws(() => hub.emit('x', circular), { name: 'TypeError', message: /nested deeper|circular/ });
    assert.throws(() => hub.emit('x', 10n), { name: 'TypeError', message: /BigInt/ });
    assert.throws(() => hub.attach({}), { name: 'TypeError', message: /http.Server/ });
    assert.throws(() => hub.use(42), { name: 'TypeError', message: /hook must be a function/ });
    assert.throws(() => hub.onEvent('x', null), { name: 'TypeError' });
    // The addon finds socket.io-client's bundle where Node resolves it.
    assert.match(hub.clientBundle, /socket\.io-client[\\/]dist$/);
  } finally {
    hub.close();
  }
});

test('close() twice, and every call after it fails with "the hub is closed"', async () => {
  const hub = new Hub({ workerThreads: 1 });
  const port = await hub.listen(0);
  assert.ok(port > 0);
  const p1 = hub.close();
  const p2 = hub.close();
  assert.equal(p1, p2);
  await p1;
  await hub.close();
  for (const call of [
    () => hub.emit('x'),
    () => hub.to('r').emit('x'),
    () => hub.on('login', () => {}),
    () => hub.use(() => true),
    () => hub.attach(require('node:http').createServer()),
  ]) {
    assert.throws(call, { message: 'the hub is closed' });
  }
  await assert.rejects(hub.listen(0), { message: 'the hub is closed' });
});

test('listen() serves the chat on a port of its own', async () => {
  const hub = new Hub({ workerThreads: 1, servePage: true });
  const port = await hub.listen(0, '127.0.0.1');
  const url = `http://127.0.0.1:${port}`;
  const page = await fetch(`${url}/`);
  assert.equal(page.status, 200);
  const c = client(url, '/chat', { transports: ['websocket'] });
  await c.login('own port');
  c.close();
  await assert.rejects(hub.listen(70000), RangeError);
  await hub.close();
});

test('events nobody listens to never reach JavaScript', async (t) => {
  const s = await startAttached();
  t.after(() => s.close());
  // Counted where events cross into JavaScript, before any listener: with
  // the Rust filter broken, the connect, login and first message would
  // cross too (and fail this test).
  s.hub.on('cluster', () => {}); // a listener of a kind that never comes here
  const before = s.hub._native().eventsCrossed;
  const a = client(s.url, '/');
  await a.login('quiet');
  await a.say('unheard by the host');
  const seen = [];
  const heard = new Promise((resolve) => s.hub.on('message', (e) => {
    seen.push(e.text);
    resolve();
  }));
  await a.say('heard');
  await within(heard, 'the message event');
  assert.deepEqual(seen, ['heard']);
  assert.equal(s.hub._native().eventsCrossed - before, 1, 'only the message listened to crossed');
  a.close();
});

/** Runs a script in a child Node process; resolves with {code, ms, stderr}. */
function runChild(source) {
  const started = Date.now();
  const child = spawn(process.execPath, ['-e', source], {
    cwd: path.join(__dirname, '..'),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  return within(new Promise((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal, ms: Date.now() - started, stderr }));
  }), 'the child process to exit', 20_000);
}

const CHILD_PRELUDE = `
  const http = require('node:http');
  const { Hub } = require('.');
  const { io } = require('socket.io-client');
  const server = http.createServer((q, r) => r.end('ok'));
  const hub = new Hub({ workerThreads: 2 });
  hub.attach(server);
  hub.on('login', () => {});
  server.listen(0, '127.0.0.1', () => {
    const c = io('http://127.0.0.1:' + server.address().port + '/chat', { transports: ['websocket'], reconnection: false });
    c.on('login', () => c.emit('login', 'child'));
    c.on('serverMessage', () => { STEP });
  });
`;

test('a process with a hub exits once its work is done', async () => {
  const r = await runChild(CHILD_PRELUDE.replace('STEP', 'c.disconnect(); server.close();'));
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.ms < 10_000, `took ${r.ms} ms`);
});

test('process.exit() with a hub running and a client connected', async () => {
  const r = await runChild(CHILD_PRELUDE.replace('STEP', 'process.exit(7);'));
  assert.equal(r.code, 7, r.stderr);
  assert.equal(r.signal, null);
  assert.equal(r.stderr, '');
});

test('a hub that is never attached nor closed does not keep the process alive', async () => {
  const r = await runChild(`const { Hub } = require('.'); const h = new Hub(); h.on('login', () => {});`);
  assert.equal(r.code, 0, r.stderr);
});

test('flood limits apply to attached servers and are counted in stats', async (t) => {
  const s = await startAttached({ hubOptions: { eventsPerSec: 5, eventBurst: 5, floodStrikes: 20 } });
  t.after(() => s.close());
  const limits = [];
  s.hub.on('limit', (e) => limits.push(e));
  const c = client(s.url, '/', { transports: ['websocket'] });
  await c.loginPrompt();
  for (let i = 0; i < 100; i++) c.socket.emit('clientMessage', `spam ${i}`);
  // The DISCONNECT, or (as it kept sending to a namespace it left) the
  // whole connection closed.
  assert.match(await c.disconnected(), /^(io server disconnect|transport close)$/);
  const stats = s.hub.stats;
  assert.equal(stats.flood_disconnects, 1);
  assert.ok(stats.events_dropped >= 20, JSON.stringify(stats));
  await within(new Promise((r) => { const i = setInterval(() => { if (limits.some((l) => l.disconnected)) { clearInterval(i); r(); } }, 5); }), 'the limit event');
  assert.equal(limits.find((l) => l.disconnected).limit, 'events per second');
  assert.throws(() => new Hub({ eventsPerSec: -1 }), RangeError);
});

test("the hub's logs reach a listener (or standard error), once per process", async () => {
  // A listener: the warning about a missing client bundle arrives; the
  // listener does not keep the process alive; a second setup is refused.
  const r = await runChild(`
    const { Hub, logTo } = require('.');
    const lines = [];
    logTo((line) => lines.push(line), 'chathub=info');
    try { logTo(null); } catch (e) { process.stderr.write('second: ' + e.message + '\\n'); }
    const hub = new Hub({ clientDist: '/nonexistent' });
    const check = () => {
      const w = lines.find((l) => /client bundle/.test(l.message));
      if (!w) return setImmediate(check);
      process.stderr.write('got: ' + w.level + ' ' + w.target + '\\n');
      hub.close();
    };
    check();
  `);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /second: logging is already set up in this process/);
  assert.match(r.stderr, /got: warn chathub::assets/);
  // Standard error, with the filter; a bad filter is a clear error.
  const e = await runChild(`
    const { Hub, logTo } = require('.');
    try { logTo(null, 'chathub=loud'); } catch (err) { console.error('bad: ' + err.message); }
    logTo(null, 'chathub=warn');
    new Hub({ clientDist: '/nonexistent' }).close();
  `);
  assert.equal(e.code, 0, e.stderr);
  assert.match(e.stderr, /bad: invalid log filter/);
  assert.match(e.stderr, /WARN.*no Socket\.IO client bundle/);
  assert.doesNotMatch(e.stderr, /\u001b\[/, 'no colour when standard error is not a terminal');
});

test('listen() keeps the process alive until close(), and a busy port says EADDRINUSE', async () => {
  // The child's only timer is unref'd: it fires only if the hub keeps the
  // process alive; close() then lets it exit.
  const r = await runChild(`
    const { Hub } = require('.');
    const hub = new Hub({ workerThreads: 1 });
    hub.listen(0).then(() => {
      setTimeout(() => { process.stderr.write('alive\\n'); hub.close(); }, 100).unref();
    });
  `);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, 'alive\n');
  const a = new Hub({ workerThreads: 1 });
  const port = await a.listen(0);
  const b = new Hub({ workerThreads: 1 });
  await assert.rejects(b.listen(port), (e) => e.code === 'EADDRINUSE' && /cannot listen/.test(e.message));
  await Promise.all([a.close(), b.close()]);
});

test('close() closes the server the hub was attached to; attaching twice is an error', async () => {
  const server = http.createServer((q, r) => r.end('ok'));
  const hub = new Hub({ workerThreads: 1 });
  hub.attach(server);
  assert.throws(() => hub.attach(server), /attached to this hub already/);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const closed = new Promise((resolve) => server.once('close', resolve));
  await hub.close();
  await within(closed, 'the server to close');
  assert.equal(server.listening, false);
});

test('metrics: metricsPath on the attached server, metricsBind on a port of their own, stats as a structure', async (t) => {
  const s = await startAttached({ hubOptions: { metricsPath: '/metrics', metricsBind: '127.0.0.1:0' } });
  t.after(() => s.close());
  const c = client(s.url, '/chat', { transports: ['websocket'] });
  await c.login('ann');
  const scrape = async (url) => {
    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
    return res.text();
  };
  for (const url of [`${s.url}/metrics`, `http://${s.hub.metricsAddress}/metrics`]) {
    const text = await scrape(url);
    assert.match(text, /^chathub_sockets\{namespace="\/chat"\} 1$/m, url);
    assert.match(text, /^chathub_packets_received_total\{type="event"\} 1$/m, url);
    assert.match(text, /^chathub_connections\{transport="websocket"\} 1$/m, url);
  }
  // Other paths stay the app's.
  assert.equal(await (await fetch(`${s.url}/metricsx`)).text(), 'app: GET /metricsx');
  assert.match(s.hub.metricsText, /# TYPE chathub_hook_duration_seconds histogram/);
  const st = s.hub.stats;
  assert.equal(st.events_received, 1);
  assert.equal(st.connections_websocket, 1);
  assert.ok(st.bytes_received > 0 && st.bytes_sent > 0, JSON.stringify(st));
  c.close();
  // Off by default; a bad address is refused by the core's schema.
  const plain = new Hub();
  assert.equal(plain.metricsAddress, null);
  await plain.close();
  assert.throws(() => new Hub({ metricsBind: 'nowhere' }), /metrics_bind/);
  assert.throws(() => new Hub({ metricsPath: '/health' }), /metrics_path/);
});
