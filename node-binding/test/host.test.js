'use strict';
// The host API from JavaScript: observe, act, decide, custom events with
// acks, binary as Buffer.

const test = require('node:test');
const assert = require('node:assert/strict');
const { startAttached, nextEvent, client, within } = require('./fixture');

test('the host API', async (t) => {
  const s = await startAttached();
  t.after(() => s.close());
  const { hub } = s;

  await t.test('observe: every kind, in order, with its fields', async () => {
    const seen = [];
    const types = ['connection', 'login', 'join', 'message', 'rejected', 'disconnect'];
    const listeners = types.map((type) => [type, (e) => seen.push({ type, ...e })]);
    for (const [type, l] of listeners) hub.on(type, l);
    const c = client(s.url, '/chat', { auth: { token: 'abc' }, transports: ['websocket'] });
    await c.login('ann');
    await c.join('r');
    await c.say('hello');
    c.socket.emit('join', '');
    await c.expectLine('Error: the room name must not be empty');
    const gone = nextEvent(hub, 'disconnect');
    c.close();
    await gone;
    assert.deepEqual(seen.map((e) => e.type), ['connection', 'login', 'join', 'message', 'rejected', 'disconnect']);
    const [conn, login, join, msg, rej, disc] = seen;
    assert.deepEqual(conn.auth, { token: 'abc' });
    assert.equal(conn.transport, 'websocket');
    assert.match(conn.address, /^127\.0\.0\.1:\d+$/);
    assert.equal(login.name, 'ann');
    assert.deepEqual([join.from, join.to, join.byHost], [null, 'r', false]);
    assert.deepEqual([msg.room, msg.text, msg.name], ['r', 'hello', 'ann']);
    assert.deepEqual([rej.event, rej.error], ['join', 'the room name must not be empty']);
    assert.deepEqual([disc.reason, disc.room], ['client namespace disconnect', 'r']);
    for (const [type, l] of listeners) hub.off(type, l);
  });

  await t.test('act: emit to a socket, a room, the lobby, a namespace', async () => {
    const a = client(s.url, '/chat');
    const sidOf = nextEvent(hub, 'connect');
    await a.login('a');
    const aSid = (await sidOf).sid;
    const b = client(s.url, '/chat');
    await b.login('b');
    await a.expectLine('User b Logged in');
    await b.join('vip');
    hub.of('/chat').socket(aSid).emit('news', 'for a', 42, { nested: [true] });
    assert.deepEqual(await a.event('news'), ['for a', 42, { nested: [true] }]);
    hub.of('/chat').to('vip').emit('serverMessage', 'vip only');
    await b.expectLine('vip only');
    hub.of('/chat').lobby().emit('serverMessage', 'lobby only');
    await a.expectLine('lobby only');
    hub.of('/chat').emit('serverMessage', 'everyone');
    await a.expectLine('everyone');
    await b.expectLine('everyone');
    // Binary: a Buffer arrives as binary.
    hub.of('/chat').socket(aSid).emit('file', Buffer.from([1, 2, 3]), { inner: new Uint8Array([4, 5]) });
    const [bin, obj] = await a.event('file');
    assert.deepEqual([...Buffer.from(bin)], [1, 2, 3]);
    assert.deepEqual([...Buffer.from(obj.inner)], [4, 5]);
    a.close();
    b.close();
  });

  await t.test('act: move, leave, disconnect, list', async () => {
    const a = client(s.url, '/');
    const sidOf = nextEvent(hub, 'connect', (e) => e.ns === '/');
    await a.login('mover');
    const sid = (await sidOf).sid;
    const socket = hub.of('/').socket(sid);
    await socket.join('moved');
    let listing = await hub.of('/').rooms();
    assert.deepEqual(listing.rooms, [{ name: 'moved', members: [{ sid, name: 'mover' }] }]);
    await socket.leave('elsewhere');
    await socket.leave('moved');
    listing = await hub.of('/').rooms();
    assert.deepEqual(listing.lobby, [{ sid, name: 'mover' }]);
    await assert.rejects(hub.of('/').join('AAAAAAAAAAAAAAAA', 'r'), /no socket/);
    await assert.rejects(hub.of('/').join(sid, ''), /invalid room/);
    await socket.disconnect();
    assert.equal(await a.disconnected(), 'io server disconnect');
  });

  await t.test('custom events: handlers with socket, args and ack; binary both ways', async () => {
    const calls = [];
    const handler = (socket, ...args) => {
      calls.push(args.length);
      const ack = args.at(-1);
      if (typeof ack === 'function') ack({ got: args[0] }, Buffer.from('reply'));
    };
    hub.onEvent('upload', handler);
    const c = client(s.url, '/');
    await c.loginPrompt();
    const res = await within(c.socket.timeout(5000).emitWithAck('upload', Buffer.from('data')), 'ack');
    assert.deepEqual(Buffer.from(res.got), Buffer.from('data'));
    c.socket.emit('upload', 'no ack wanted');
    await within(new Promise((r) => { const i = setInterval(() => { if (calls.length === 2) { clearInterval(i); r(); } }, 5); }), 'second call');
    assert.deepEqual(calls, [2, 1]);
    hub.offEvent('upload', handler);
    // 'event' listeners see every custom event, with an ack when asked.
    const all = nextEvent(hub, 'event');
    c.socket.emit('anything', 1, 2);
    const e = await all;
    assert.deepEqual([e.event, e.args], ['anything', [1, 2]]);
    c.close();
  });

  await t.test('decide: async connect and login hooks', async () => {
    hub.use(async ({ auth }) => {
      await new Promise((r) => setImmediate(r));
      if (auth && auth.token === 'good') return true;
      if (auth && auth.token === 'throw') throw new Error('thrown reason');
      return 'bad token';
    });
    const bad = client(s.url, '/', { auth: { token: 'bad' } });
    assert.equal(await bad.connectError(), 'bad token');
    bad.close();
    const thrown = client(s.url, '/', { auth: { token: 'throw' } });
    assert.equal(await thrown.connectError(), 'thrown reason');
    thrown.close();
    hub.useLogin(({ name }) => (name === 'root' ? 'reserved name' : undefined));
    const good = client(s.url, '/', { auth: { token: 'good' } });
    await good.loginPrompt();
    assert.deepEqual(await good.ack('login', 'root'), { ok: false, error: 'login refused: reserved name' });
    await good.expectLine('Error: login refused: reserved name');
    assert.deepEqual(await good.ack('login', 'user'), { ok: true });
    await good.expectLine('Currently logged in as user');
    hub.use(null).useLogin(null);
    const open = client(s.url, '/');
    await open.login('root');
    good.close();
    open.close();
  });

  await t.test('decide: hooks chain in order, and the first refusal stops them', async () => {
    const calls = [];
    hub.use(({ auth }) => { calls.push('first'); return auth.token !== 'no-first' || 'first says no'; });
    hub.use(async ({ auth }) => { calls.push('second'); return auth.token !== 'no-second' || 'second says no'; });
    hub.use(({ auth }) => { calls.push('third'); return auth.token !== 'bare'; });
    const one = client(s.url, '/', { auth: { token: 'no-first' } });
    assert.equal(await one.connectError(), 'first says no');
    assert.deepEqual(calls.splice(0), ['first'], 'a refusal stops the chain');
    one.close();
    const two = client(s.url, '/', { auth: { token: 'no-second' } });
    assert.equal(await two.connectError(), 'second says no', 'a second hook is not a replacement of the first');
    assert.deepEqual(calls.splice(0), ['first', 'second']);
    two.close();
    const bare = client(s.url, '/', { auth: { token: 'bare' } });
    assert.equal(await bare.connectError(), 'refused', "the hub's own text for a refusal without a reason");
    bare.close();
    calls.length = 0;
    const ok = client(s.url, '/', { auth: { token: 'fine' } });
    await ok.login('chained');
    assert.deepEqual(calls, ['first', 'second', 'third']);
    ok.close();
    hub.use(null);
    const open = client(s.url, '/', { auth: { token: 'no-first' } });
    await open.login('unhooked');
    open.close();
  });

  await t.test('decide: the connect hook sees the handshake headers (cookies) and address', async () => {
    const seen = [];
    hub.use(({ headers, address }) => {
      seen.push({ cookie: headers.cookie, address });
      return /session=good/.test(headers.cookie || '') || 'no session cookie';
    });
    for (const transports of [['polling'], ['websocket']]) {
      const bad = client(s.url, '/', { transports, extraHeaders: { cookie: 'session=bad' } });
      assert.equal(await bad.connectError(), 'no session cookie');
      bad.close();
      const good = client(s.url, '/', { transports, extraHeaders: { cookie: 'a=1; session=good' } });
      await good.login(`cookie ${transports[0]}`);
      good.close();
    }
    hub.use(null);
    assert.deepEqual(seen.map((x) => x.cookie), ['session=bad', 'a=1; session=good', 'session=bad', 'a=1; session=good']);
    assert.ok(seen.every((x) => /^127\.0\.0\.1:\d+$/.test(x.address)), JSON.stringify(seen));
  });
});
