'use strict';
// Connection state recovery across hubs and restarts: the Rust, Node and C
// examples with RECOVERY=on on one real redis-server. socket.io-client 4.8
// reaches them through a TCP proxy that plays the network and the load
// balancer: it drops the client's connection, then sends its reconnection
// to another hub (or to the same hub restarted). The client must come back
// with the same id, name and room, and every line it missed, once and in
// order, before any new one.

const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { EXAMPLES, client, within } = require('./helpers');
const { RedisServer } = require('./redis');

const FACES = ['rust', 'node', 'c'].filter((f) => EXAMPLES[f]);

/**
 * A TCP proxy on a free port: forwards to `port` on loopback; `drop()`
 * cuts every connection (a network drop), `to(port)` sends new ones
 * elsewhere.
 */
async function proxy(port) {
  let target = port;
  const open = new Set();
  const server = net.createServer((down) => {
    const up = net.connect(target, '127.0.0.1');
    open.add(down);
    open.add(up);
    const end = () => {
      down.destroy();
      up.destroy();
      open.delete(down);
      open.delete(up);
    };
    for (const s of [down, up]) {
      s.on('error', end);
      s.on('close', end);
    }
    down.pipe(up);
    up.pipe(down);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    to(p) { target = p; },
    drop() { for (const s of open) s.destroy(); },
    close() {
      this.drop();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

const portOf = (url) => Number(new URL(url).port);

/**
 * Logs in and joins `room` where other hubs' login notices may still be on
 * their way (they may come before our own replies).
 */
async function enter(c, name, room) {
  await c.loginAmid(name);
  c.socket.emit('join', room);
  for (;;) {
    const line = await c.line();
    if (line === 'joined room success!') return;
    if (!line.endsWith('Logged in')) throw new Error(`unexpected before the join: ${line}`);
  }
}

/** Resolves on the socket's next `connect`. */
function connected(c) {
  return within(new Promise((resolve) => c.socket.once('connect', resolve)), 'a connect');
}

test('a dropped client comes back to another hub with every line it missed', { skip: FACES.length < 2 && 'needs two faces' }, async (t) => {
  const redis = await RedisServer.start();
  t.after(() => redis.stop());
  const hubs = {};
  for (const face of FACES) {
    hubs[face] = await EXAMPLES[face]({ RECOVERY: 'on', REDIS_URL: redis.url });
    t.after(() => hubs[face].stop());
  }
  // Each face hands a client over to the next one.
  const pairs = FACES.map((from, i) => [from, FACES[(i + 1) % FACES.length]]);
  for (const [from, to] of pairs) {
    await t.test(`${from} → ${to}`, async () => {
      const lb = await proxy(portOf(hubs[from].url));
      const other = FACES.find((f) => f !== from && f !== to) || to;
      const room = `r-${from}-${to}`;
      const ann = client(lb.url, '/chat', { transports: ['websocket'] });
      const bob = client(hubs[other].url, '/chat', { transports: ['websocket'] });
      try {
        await enter(ann, `ann-${from}`, room);
        await enter(bob, `bob-${other}`, room);
        await bob.say('before');
        await ann.expectLine(`bob-${other} said: before`);
        const id = ann.socket.id;

        lb.drop();
        await ann.disconnected();
        await bob.expectLine(`User ann-${from} disconnected`);
        for (let i = 1; i <= 10; i++) await bob.say(`missed ${i}`);

        lb.to(portOf(hubs[to].url));
        const back = connected(ann);
        ann.socket.connect();
        await back;
        assert.equal(ann.socket.recovered, true, 'socket.recovered');
        assert.equal(ann.socket.id, id, 'the same id');
        for (let i = 1; i <= 10; i++) await ann.expectLine(`bob-${other} said: missed ${i}`);
        await bob.expectLine(`User ann-${from} is back`);
        await bob.say('after');
        await ann.expectLine(`bob-${other} said: after`);
        await ann.say('hello from the other hub');
        await bob.expectLine(`ann-${from} said: hello from the other hub`);
        await hubs[to].waitForLine(new RegExp(`${id} is back`));
      } finally {
        ann.close();
        bob.close();
        await lb.close();
      }
    });
  }
});

test('a client comes back to its hub restarted, and lines sent meanwhile reach it', async (t) => {
  const redis = await RedisServer.start();
  t.after(() => redis.stop());
  const env = { RECOVERY: 'on', REDIS_URL: redis.url };
  const face = FACES[0];
  const otherFace = FACES[1] || FACES[0];
  let hub = await EXAMPLES[face](env);
  const other = await EXAMPLES[otherFace](env);
  t.after(() => other.stop());
  const lb = await proxy(portOf(hub.url));
  t.after(() => lb.close());
  const ann = client(lb.url, '/chat', { transports: ['websocket'] });
  const bob = client(other.url, '/chat', { transports: ['websocket'] });
  t.after(() => { ann.close(); bob.close(); });
  await enter(ann, 'ann', 'r1');
  await enter(bob, 'bob', 'r1');
  const id = ann.socket.id;

  // A graceful stop: the client's transport closes, its session stays in
  // Redis; the hub starts again (a deploy).
  await hub.stop();
  await ann.disconnected();
  await bob.expectLine('User ann disconnected');
  await bob.say('during the restart');
  hub = await EXAMPLES[face](env);
  t.after(() => hub.stop());
  lb.to(portOf(hub.url));
  const back = connected(ann);
  ann.socket.connect();
  await back;
  assert.equal(ann.socket.recovered, true);
  assert.equal(ann.socket.id, id);
  await ann.expectLine('bob said: during the restart');
  await bob.expectLine('User ann is back');
  await ann.say('back after the restart');
  await bob.expectLine('ann said: back after the restart');
});
