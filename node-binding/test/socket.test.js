'use strict';
// socket.io's server API, as a socket.io user reaches for it:
// `hub.of(ns).on('connection', socket => …)` with `socket.on/emit/
// emitWithAck/join/leave/to/broadcast/data/handshake/disconnect`,
// `hub.to([…]).except(…).emit`, `fetchSockets()`; driven by
// socket.io-client.

const test = require('node:test');
const assert = require('node:assert/strict');
const { startAttached, client, within } = require('./fixture');

/** The next `connection` of `nsp`, as a socket object. */
function nextSocket(nsp) {
  return within(new Promise((resolve) => {
    const l = (socket) => {
      nsp.off('connection', l);
      resolve(socket);
    };
    nsp.on('connection', l);
  }), `a connection to ${nsp.name}`);
}

/** Connects a client and resolves once connected. */
async function connected(url, ns, opts = {}) {
  const c = client(url, ns, { transports: ['websocket'], ...opts });
  if (!c.socket.connected) await within(new Promise((r) => c.socket.once('connect', r)), 'a connect');
  return c;
}

test('the socket API of a host namespace', async (t) => {
  const s = await startAttached({ hubOptions: { hostNamespaces: ['/game'] } });
  t.after(() => s.close());
  const nsp = s.hub.of('/game');
  assert.equal(s.hub.of('/game'), nsp, 'one namespace object');

  const first = nextSocket(nsp);
  const hubConnect = new Promise((resolve) => {
    const l = (e) => {
      if (e.ns !== '/game') return;
      s.hub.off('connect', l);
      resolve(e);
    };
    s.hub.on('connect', l);
  });
  const a = await connected(s.url, '/game', { auth: { token: 't1' }, extraHeaders: { 'x-app': 'yes' } });
  const sa = await first;
  assert.equal(sa.handshake.headers['x-app'], 'yes');
  assert.match(sa.handshake.headers.host, /^127\.0\.0\.1:\d+$/);
  assert.equal((await within(hubConnect, 'the hub\'s connect event')).headers['x-app'], 'yes');
  assert.equal(sa.id, a.socket.id);
  assert.deepEqual(sa.handshake.auth, { token: 't1' });
  assert.match(sa.handshake.address, /^127\.0\.0\.1:\d+$/);
  assert.equal(typeof sa.handshake.issued, 'number');
  assert.equal(sa.recovered, false);
  assert.equal(sa.connected, true);
  sa.data.score = 7;

  await t.test('socket.on: events with arguments, binary and an ack', async () => {
    const got = new Promise((resolve) => sa.on('move', (x, bin, ack) => {
      ack('ok', Buffer.from([x]));
      resolve([x, bin]);
    }));
    const answer = await a.ack('move', 3, Buffer.from([1, 2]));
    const [x, bin] = await got;
    assert.equal(x, 3);
    assert.ok(Buffer.from(bin).equals(Buffer.from([1, 2])));
    assert.equal(answer, 'ok');
  });

  await t.test('acks: answered before what the handler sends next; later; once', async () => {
    const seen = [];
    let again;
    sa.on('order', (ack) => {
      ack('answer');
      again = ack('twice');
      sa.emit('after', 'event');
    });
    a.socket.on('after', () => seen.push('event'));
    // Recorded as each packet is read (an await would record later).
    const answer = await within(new Promise((resolve) => a.socket.emit('order', (x) => {
      seen.push('ack');
      resolve(x);
    })), 'the ack');
    await a.event('after');
    assert.equal(answer, 'answer');
    assert.deepEqual(seen.slice(0, 1), ['ack'], 'the ack reaches the client before the event sent after it');
    assert.equal(again, false, 'a second answer is refused');
    // An ack answered after its batch (later, from a timer).
    sa.on('later', (x, ack) => setTimeout(() => ack({ x, late: true }), 20));
    assert.deepEqual(await a.ack('later', 5), { x: 5, late: true });
  });

  await t.test('acks answered in a batch and alone carry any JSON exactly; bad native input is refused', async () => {
    const value = { s: 'é\u2028\ud83d\ude00 "q" \\', n: [1.5, -2, 1e21, 0], nested: { a: null, b: [true, false] } };
    sa.on('same', (x, ack) => ack(x, 'two', 3));
    assert.deepEqual(await a.ack('same', value), value);
    const both = await within(new Promise((resolve) => a.socket.emit('same', value, (...args) => resolve(args))), 'the ack');
    assert.deepEqual(both, [value, 'two', 3]);
    // Answered after its batch: one native call of its own.
    sa.on('alone', (x, ack) => setImmediate(() => ack(x)));
    assert.deepEqual(await a.ack('alone', value), value);
    const native = s.hub._native();
    assert.throws(() => native.ack(999999, '{"not":"an array"}', []), /array/);
    assert.throws(() => native.ack(999999, '[1,', []), /array/);
    assert.throws(() => native.ackMany('[[999999,0,{"x":1}]]', []), /args must be an array/);
    assert.throws(() => native.ackMany('[[999999,0,[1]', []), /answers must be/);
  });

  await t.test('socket.emit, emitWithAck and timeout', async () => {
    sa.emit('hello', { n: 1 }, Buffer.from([9]));
    const [obj, bin] = await a.event('hello');
    assert.deepEqual(obj, { n: 1 });
    assert.ok(Buffer.from(bin).equals(Buffer.from([9])));

    a.socket.on('question', (q, answer) => answer(`${q}!`));
    assert.equal(await sa.emitWithAck('question', 'why'), 'why!');
    const viaCallback = await new Promise((resolve) => sa.emit('question', 'cb', resolve));
    assert.equal(viaCallback, 'cb!');

    a.socket.on('ignored', () => {});
    await assert.rejects(sa.timeout(100).emitWithAck('ignored'), (e) => e.code === 'ETIMEDOUT' && e.name === 'HubError');
    const err = await new Promise((resolve) => sa.timeout(100).emit('ignored', (e) => resolve(e)));
    assert.equal(err.code, 'ETIMEDOUT');
  });

  const second = nextSocket(nsp);
  const b = await connected(s.url, '/game');
  const sb = await second;

  await t.test('join, to(room), to([rooms]).except, broadcast', async () => {
    await sa.join(['r1', 'r2']);
    await sb.join('r2');
    s.hub.of('/game').to('r1').emit('note', 'r1');
    assert.deepEqual(await a.event('note'), ['r1']);
    // Each socket once, whichever of the rooms it is in.
    nsp.to(['r1', 'r2']).emit('note', 'both');
    assert.deepEqual(await a.event('note'), ['both']);
    assert.deepEqual(await b.event('note'), ['both']);
    nsp.to('r2').except('r1').emit('note', 'r2 but not r1');
    assert.deepEqual(await b.event('note'), ['r2 but not r1']);
    nsp.to('r2').except(sb.id).emit('note', 'r2 but not b');
    assert.deepEqual(await a.event('note'), ['r2 but not b']);
    // From a socket: the others.
    sa.to('r2').emit('note', 'from a to r2');
    sa.broadcast.emit('note', 'from a to all');
    assert.deepEqual(await b.event('note'), ['from a to r2']);
    assert.deepEqual(await b.event('note'), ['from a to all']);
    // a got none of its own (the next it gets is this one).
    nsp.emit('note', 'everyone');
    assert.deepEqual(await a.event('note'), ['everyone']);
    assert.deepEqual(await b.event('note'), ['everyone']);
    await sa.leave('r1');
    nsp.to('r1').emit('note', 'nobody');
    nsp.to('r2').emit('note', 'r2 again');
    assert.deepEqual(await a.event('note'), ['r2 again'], 'a left r1');
  });

  await t.test('fetchSockets: rooms and data', async () => {
    const all = await nsp.fetchSockets();
    const byId = Object.fromEntries(all.map((x) => [x.id, x]));
    assert.deepEqual(byId[sa.id].rooms, ['r2']);
    assert.deepEqual(byId[sa.id].data, { score: 7 });
    assert.deepEqual(byId[sb.id].rooms, ['r2']);
  });

  await t.test('disconnect: the reason reaches socket.on("disconnect")', async () => {
    const reason = new Promise((resolve) => sb.on('disconnect', resolve));
    sb.disconnect();
    assert.equal(await b.disconnected(), 'io server disconnect');
    assert.equal(await reason, 'server namespace disconnect');
    assert.equal(sb.connected, false);
    const left = new Promise((resolve) => sa.on('disconnect', resolve));
    a.close();
    assert.equal(await left, 'client namespace disconnect');
  });

  await t.test('bad input is refused clearly, with the core\'s codes', async () => {
    const { HubError } = require('..');
    assert.throws(() => sa.emit('disconnect'), (e) => e instanceof HubError && e.code === 'ERR_INVALID_EVENT_NAME' && /reserved/.test(e.message));
    assert.throws(() => sa.on('', () => {}), /must not be empty/);
    assert.throws(() => nsp.to('').emit('x'), (e) => e.code === 'ERR_INVALID_ROOM');
    assert.throws(() => s.hub.of('/nope'), (e) => e instanceof HubError && e.code === 'ERR_UNKNOWN_NAMESPACE');
    await assert.rejects(nsp.join('nosuchsocket', 'r'), (e) => e instanceof HubError && e.code === 'ERR_SOCKET_NOT_FOUND');
    assert.throws(() => nsp.to(3), TypeError);
    assert.throws(() => nsp.to('r').emit('x', () => {}), /not supported when broadcasting/);
    assert.throws(() => sa.timeout(-1), RangeError);
    assert.throws(() => nsp.on('message', () => {}), /no "message" event/);
  });
});

test('the chapter, ported from socket.io by changing the require', async (t) => {
  const s = await startAttached();
  t.after(() => s.close());
  const io = s.hub;
  // The chapter's `my event` handler, as its server has it.
  const logged = [];
  let heard;
  const first = new Promise((resolve) => { heard = resolve; });
  io.of('/chat').on('connection', (socket) => {
    socket.on('my event', (content) => {
      logged.push([socket.id, content]);
      heard();
    });
  });
  const ann = client(s.url, '/chat', { transports: ['websocket'] });
  t.after(() => ann.close());
  await ann.login('ann');
  ann.socket.emit('my event', 'Hello world.');
  await within(first, 'my event');
  assert.deepEqual(logged, [[ann.socket.id, 'Hello world.']]);
  // The chat's rules stay in the hub: a chat socket joins one room at a
  // time, and socket.name follows its login.
  const socket = io.of('/chat').fetchSockets().then((all) => all.find((x) => x.id === ann.socket.id));
  assert.equal((await socket).name, 'ann');
});

test('socket.rooms: the hub\'s rooms of the socket, after join, leave and the chat\'s own join', async (t) => {
  const s = await startAttached({ hubOptions: { hostNamespaces: ['/game'] } });
  t.after(() => s.close());

  // A host namespace: its id, then every room it joined.
  const game = s.hub.of('/game');
  const first = nextSocket(game);
  const a = await connected(s.url, '/game');
  const sa = await first;
  assert.ok(sa.rooms instanceof Set);
  assert.deepEqual([...sa.rooms], [sa.id]);
  await sa.join(['r1', 'r2']);
  assert.deepEqual([...sa.rooms].sort(), [sa.id, 'r1', 'r2'].sort());
  await sa.leave('r1');
  assert.deepEqual([...sa.rooms].sort(), [sa.id, 'r2'].sort());
  // A Set of its own each time: changing it changes nothing.
  sa.rooms.add('forged');
  assert.equal(sa.rooms.has('forged'), false);

  // A chat namespace: the chat's one room, whoever moved it there.
  const chat = s.hub.of('/chat');
  const second = nextSocket(chat);
  const ann = client(s.url, '/chat', { transports: ['websocket'] });
  t.after(() => ann.close());
  const sann = await second;
  await ann.login('ann');
  assert.deepEqual([...sann.rooms], [sann.id], 'the lobby is no room');
  await ann.join('cafe');
  assert.deepEqual([...sann.rooms], [sann.id, 'cafe'], "the chat's own join");
  await sann.join('vip');
  assert.deepEqual([...sann.rooms], [sann.id, 'vip'], 'one room at a time');
  await sann.leave('vip');
  assert.deepEqual([...sann.rooms], [sann.id]);

  // Gone: no rooms.
  const left = new Promise((resolve) => sa.on('disconnect', resolve));
  a.close();
  await within(left, 'the disconnect');
  assert.equal(sa.rooms.size, 0);
});

test('namespace middlewares: chained in order, the first refusal stops them, connect_error has its message', async (t) => {
  const s = await startAttached({ hubOptions: { hostNamespaces: ['/game'] } });
  t.after(() => s.close());
  const nsp = s.hub.of('/game');
  const calls = [];
  const seen = new Map();
  s.hub.use(({ auth }) => {
    calls.push('hub');
    return auth.user !== 'blocked' || 'blocked by the hub';
  });
  nsp.use((socket, next) => {
    calls.push('one');
    seen.set(socket.handshake.auth.user, { socket, connected: socket.connected, rooms: socket.rooms.size });
    socket.data.user = socket.handshake.auth.user;
    if (!socket.data.user) next(new Error('who are you?'));
    else next();
  });
  nsp.use((socket, next) => {
    // Later, as a middleware that asks a database would.
    setImmediate(() => {
      calls.push('two');
      next(socket.data.user === 'eve' ? new Error('not eve') : undefined);
    });
  });
  nsp.use((socket, next) => {
    calls.push('three');
    if (socket.data.user === 'mallory') throw new Error('thrown by three');
    next();
    next(new Error('a second next is ignored'));
  });
  const sockets = [];
  nsp.on('connection', (socket) => sockets.push(socket));

  const refused = async (auth, message, chain) => {
    const c = client(s.url, '/game', { transports: ['websocket'], auth });
    assert.equal(await c.connectError(), message);
    c.close();
    assert.deepEqual(calls.splice(0), chain);
  };
  await refused({}, 'who are you?', ['hub', 'one']);
  await refused({ user: 'eve' }, 'not eve', ['hub', 'one', 'two']);
  await refused({ user: 'mallory' }, 'thrown by three', ['hub', 'one', 'two', 'three']);
  await refused({ user: 'blocked' }, 'blocked by the hub', ['hub']);

  const ann = await connected(s.url, '/game', { auth: { user: 'ann' } });
  t.after(() => ann.close());
  assert.deepEqual(calls.splice(0), ['hub', 'one', 'two', 'three']);
  await within((async () => { while (sockets.length === 0) await new Promise((r) => setImmediate(r)); })(), 'the connection');
  const [socket] = sockets;
  assert.equal(socket.id, ann.socket.id);
  assert.equal(socket, seen.get('ann').socket, 'the middlewares\' socket is the connection\'s');
  assert.deepEqual(seen.get('ann').rooms, 0, 'no rooms before it connects');
  assert.equal(seen.get('ann').connected, false);
  assert.equal(socket.connected, true);
  assert.deepEqual(socket.data, { user: 'ann' });
  assert.deepEqual([...socket.rooms], [socket.id]);
  const listed = await nsp.fetchSockets();
  assert.deepEqual(listed.find((x) => x.id === socket.id).data, { user: 'ann' });

  // Other namespaces: the hub's hooks only.
  const plain = client(s.url, '/chat', { transports: ['websocket'] });
  t.after(() => plain.close());
  await plain.login('plain');
  assert.deepEqual(calls.splice(0), ['hub']);

  assert.throws(() => nsp.use(42), { name: 'TypeError', message: /the middleware must be a function/ });
  // Without the hub's hooks, the namespace's still run.
  s.hub.use(null);
  await refused({}, 'who are you?', ['one']);
});
