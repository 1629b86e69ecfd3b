'use strict';
// Scale-out: hubs in separate processes — the Rust example, the C example
// and a Node host (this test process, through the addon) — on one real
// redis-server act as one hub; a Redis outage keeps local chat going and
// heals by itself.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { Hub } = require('../../node-binding');
const { EXAMPLES, ROOT, client, within } = require('./helpers');
const { RedisCluster, RedisServer } = require('./redis');

/** The hosts in other processes: the Rust example, and the C one when built. */
function otherHosts() {
  const hosts = [['rust', EXAMPLES.rust]];
  if (EXAMPLES.c) hosts.push(['c', EXAMPLES.c]);
  return hosts;
}

/** A Node host in this process: an http server with a hub attached. */
async function nodeHost(redisUrl) {
  const server = http.createServer((req, res) => res.end('node host'));
  const hub = new Hub({ redisUrl, workerThreads: 2, shutdownTimeout: 2000 });
  hub.attach(server);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    hub,
    async stop() {
      await hub.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function nextCluster(hub, up) {
  return within(new Promise((resolve) => {
    const l = (e) => {
      if (e.up === up) {
        hub.off('cluster', l);
        resolve(e);
      }
    };
    hub.on('cluster', l);
  }), `the cluster link to go ${up ? 'up' : 'down'}`);
}

test('hubs in separate processes act as one over Redis', async (t) => {
  const redis = await RedisServer.start();
  t.after(() => redis.stop());
  const env = { REDIS_URL: redis.url };
  const node = await nodeHost(redis.url);
  t.after(() => node.stop());
  const others = [];
  for (const [name, start] of otherHosts()) {
    const server = await start(env);
    t.after(() => server.stop());
    others.push({ name, server });
  }
  const nodes = [{ name: 'node', url: node.url }, ...others.map((o) => ({ name: o.name, url: o.server.url }))];
  const clients = [];
  t.after(() => clients.forEach((c) => c.close()));
  const connect = (n, ns = '/chat') => {
    const c = client(n.url, ns, { transports: ['websocket'] });
    clients.push(c);
    return c;
  };

  await t.test('lobby and room chat, notices and namespaces cross every node', async () => {
    // Everyone is in before anyone logs in: a login notice still crossing
    // Redis (a busy hub gathers what it publishes for a moment) must not
    // race with a later client's connection.
    const users = nodes.map((n) => connect(n));
    for (const c of users) await c.joined();
    for (const [i, c] of users.entries()) {
      await c.loginAmid(`u-${nodes[i].name}`);
      for (const [j, other] of users.entries()) {
        if (j !== i) await other.expectLine(`User u-${nodes[i].name} Logged in`);
      }
    }
    // Lobby: each one's line reaches every other node.
    for (const [i, c] of users.entries()) {
      await c.say(`hello from ${nodes[i].name}`);
      for (const [j, other] of users.entries()) {
        if (j !== i) await other.expectLine(`u-${nodes[i].name} said: hello from ${nodes[i].name}`);
      }
    }
    // A room that spans the nodes; the lobby does not hear it.
    const lobbyWatcher = connect(nodes[0]);
    await lobbyWatcher.loginAmid('watcher');
    for (const c of users) await c.expectLine('User watcher Logged in');
    for (const c of users) await c.join('span');
    await users[0].say('in span');
    for (const c of users.slice(1)) await c.expectLine(`u-${nodes[0].name} said: in span`);
    // The other namespace hears nothing of it.
    const rootA = connect(nodes[0], '/');
    const rootB = connect(nodes[nodes.length - 1], '/');
    await rootA.joined();
    await rootB.joined();
    await rootA.loginAmid('rootA');
    await rootB.expectLine('User rootA Logged in');
    await rootB.loginAmid('rootB');
    await rootA.expectLine('User rootB Logged in');
    // A disconnect on one node is announced on the others.
    users.at(-1).close();
    for (const c of users.slice(0, -1)) await c.expectLine(`User u-${nodes.at(-1).name} disconnected`);
    // The watcher (lobby) heard none of the room: its next line is this
    // one. Its line reaches the lobby of another hub before the next test
    // connects there.
    await rootA.say('ns check');
    await rootB.expectLine('rootA said: ns check');
    const lobbyFar = connect(nodes[1]);
    await lobbyFar.joined();
    await lobbyWatcher.say('lobby again');
    await lobbyFar.expectLine('watcher said: lobby again');
  });

  await t.test("the Node host's actions and listings reach the other nodes", async () => {
    const far = nodes[1];
    const c = connect(far);
    await c.loginAmid('far');
    const sid = c.socket.id;
    node.hub.of('/chat').socket(sid).emit('news', 'direct across');
    assert.deepEqual(await c.event('news'), ['direct across']);
    await node.hub.of('/chat').join(sid, 'moved');
    let listing = await node.hub.of('/chat').rooms();
    const moved = listing.rooms.find((r) => r.name === 'moved');
    assert.deepEqual(moved && moved.members.map(({ sid: id, name }) => ({ sid: id, name })), [{ sid, name: 'far' }]);
    assert.equal(typeof moved.members[0].hub, 'string', 'each member says which hub it is on');
    node.hub.of('/chat').to('moved').emit('serverMessage', 'to the moved');
    await c.expectLine('to the moved');
    await node.hub.of('/chat').leave(sid, 'moved');
    listing = await node.hub.of('/chat').rooms();
    assert.ok(listing.lobby.some((m) => m.sid === sid), JSON.stringify(listing));
    await node.hub.of('/chat').disconnect(sid);
    assert.equal(await c.disconnected(), 'io server disconnect');
    await assert.rejects(node.hub.of('/chat').join('AAAAAAAAAAAAAAAA', 'r'), /no socket/);
  });

  await t.test('a Redis outage: local chat goes on, cross-node chat comes back', async () => {
    // All in before the logins (see the first test).
    const here = connect(nodes[0], '/');
    const here2 = connect(nodes[0], '/');
    const there = connect(nodes[1], '/');
    for (const c of [here, here2, there]) await c.joined();
    await here.loginAmid('here1');
    await here2.expectLine('User here1 Logged in');
    await there.expectLine('User here1 Logged in');
    await here2.loginAmid('here2');
    await here.expectLine('User here2 Logged in');
    await there.expectLine('User here2 Logged in');
    await there.loginAmid('there');
    await here.expectLine('User there Logged in');
    await here2.expectLine('User there Logged in');

    const down = nextCluster(node.hub, false);
    await redis.stop();
    await down;
    for (const o of others) await o.server.waitForLine(/redis link down/);
    await here.say('during the outage');
    await here2.expectLine('here1 said: during the outage');
    await there.say('alone over there');

    const up = nextCluster(node.hub, true);
    await redis.restart();
    // Every hub reconnects by itself: this process's says so by an event,
    // the others in their logs.
    await up;
    for (const o of others) await o.server.waitForLine(/redis link up/);
    await there.say('after the outage');
    await here.expectLine('there said: after the outage');
    await here2.expectLine('there said: after the outage');
    await here.say('back here');
    await there.expectLine('here1 said: back here');
  });
});

test('presence across three hubs, one of them killed with SIGKILL', async (t) => {
  const redis = await RedisServer.start();
  t.after(() => redis.stop());
  const env = { REDIS_URL: redis.url };
  const node = await nodeHost(redis.url);
  t.after(() => node.stop());
  // Two hubs in other processes: the Rust example and the C one (a second
  // Rust example when the C one is not built); the second is killed.
  const [first, second] = [EXAMPLES.rust, EXAMPLES.c ?? EXAMPLES.rust];
  const keep = await first(env);
  t.after(() => keep.stop());
  const doomed = await second(env);
  t.after(() => doomed.stop('SIGKILL'));
  const clients = [];
  t.after(() => clients.forEach((c) => c.close()));

  // Every presence event this process's hub gets, and waits on them.
  const seen = [];
  const waiting = [];
  node.hub.on('presence', (e) => {
    seen.push(e);
    for (const w of [...waiting]) {
      if (w.match(e)) {
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve(e);
      }
    }
  });
  const presence = (match, what) => {
    const found = seen.find(match);
    if (found) return Promise.resolve(found);
    return within(new Promise((resolve) => waiting.push({ match, resolve })), what);
  };

  const ann = client(keep.url, '/chat', { transports: ['websocket'] });
  clients.push(ann);
  await ann.loginAmid('ann');
  await ann.join('r');
  const bob = client(doomed.url, '/chat', { transports: ['websocket'] });
  clients.push(bob);
  await bob.loginAmid('bob');
  const annIn = await presence((e) => e.sid === ann.socket.id && e.change === 'joined' && e.room === 'r', 'ann in r');
  const bobIn = await presence((e) => e.sid === bob.socket.id && e.change === 'renamed' && e.name === 'bob', 'bob named');
  assert.equal(annIn.name, 'ann');
  assert.ok(annIn.hub && bobIn.hub && annIn.hub !== bobIn.hub, 'each on its own hub');

  // The listing answered across the hubs says who is where, and on which hub.
  let listing = await node.hub.of('/chat').rooms();
  assert.deepEqual(listing.rooms.find((r) => r.name === 'r').members, [{ sid: ann.socket.id, name: 'ann', hub: annIn.hub }]);
  assert.ok(listing.lobby.some((m) => m.sid === bob.socket.id && m.hub === bobIn.hub), JSON.stringify(listing));

  // Killed: no leave, no goodbye. Its members leave within the heartbeat
  // timeout (3 s), for the hosts and in listings. (The client forgets its
  // id once its connection is gone: keep it.)
  const bobSid = bob.socket.id;
  const killedAt = Date.now();
  await doomed.stop('SIGKILL');
  const gone = await presence((e) => e.sid === bobSid && e.change === 'left', 'bob to leave');
  assert.equal(gone.hub, bobIn.hub);
  assert.ok(Date.now() - killedAt < 6000, `left after ${Date.now() - killedAt} ms`);
  listing = await node.hub.of('/chat').rooms();
  assert.ok(!listing.lobby.some((m) => m.sid === bobSid), JSON.stringify(listing));
  // The hub that lives on is still there.
  assert.ok(!seen.some((e) => e.sid === ann.socket.id && e.change === 'left' && e.room === 'r'), 'ann never left r');
  await ann.say('still here');
});

test('every example takes REDIS_BATCH_MS: 0 chats across hubs, an out-of-range value is refused at start', async (t) => {
  const redis = await RedisServer.start();
  t.after(() => redis.stop());
  const faces = Object.keys(EXAMPLES).filter((f) => f !== 'express');
  for (const face of faces) {
    await assert.rejects(
      EXAMPLES[face]({ REDIS_URL: redis.url, REDIS_BATCH_MS: '5000' }),
      /redis_batch/,
      `${face}: REDIS_BATCH_MS=5000 refused`,
    );
  }
  const hubs = [];
  for (const face of faces) {
    const hub = await EXAMPLES[face]({ REDIS_URL: redis.url, REDIS_BATCH_MS: '0' });
    t.after(() => hub.stop());
    hubs.push(hub);
  }
  // Every hub in before the logins: the login notices of the others are
  // then the only lines that can come before our own.
  const clients = hubs.map((h) => client(h.url));
  t.after(() => clients.forEach((c) => c.close()));
  for (const [i, c] of clients.entries()) {
    await c.loginAmid(`u${i}`);
    c.socket.emit('join', 'batch0');
    for (;;) {
      const line = await c.line();
      if (line === 'joined room success!') break;
      assert.match(line, /Logged in$/);
    }
  }
  const [first, ...rest] = clients;
  await first.say('no gathering');
  for (const c of rest) {
    for (;;) {
      const line = await c.line();
      if (line === 'u0 said: no gathering') break;
      assert.match(line, /Logged in$/);
    }
  }
});

test('every example takes REDIS_CLUSTER: on a Redis Cluster the chat crosses hubs over sharded pub/sub; without REDIS_URL it is refused', async (t) => {
  const faces = Object.keys(EXAMPLES).filter((f) => f !== 'express');
  for (const face of faces) {
    await assert.rejects(
      EXAMPLES[face]({ REDIS_CLUSTER: '1' }),
      /redis_cluster needs a redis_url/,
      `${face}: REDIS_CLUSTER without REDIS_URL refused`,
    );
  }
  const cluster = await RedisCluster.start(3);
  t.after(() => cluster.stop());
  const hubs = [];
  for (const face of faces) {
    const hub = await EXAMPLES[face]({ REDIS_URL: cluster.url, REDIS_CLUSTER: '1' });
    t.after(() => hub.stop());
    hubs.push(hub);
  }
  const clients = hubs.map((h) => client(h.url));
  t.after(() => clients.forEach((c) => c.close()));
  // Rooms until every shard owns one's channel: each client joins each in
  // turn, hears a line of the others there, and the room's shard (only)
  // counts every hub as a subscriber.
  const rooms = [];
  const owners = new Set();
  for (let i = 0; owners.size < cluster.nodes.length; i++) {
    const owner = await cluster.owner(`chathub#room#5#/chat#sharded-${i}`);
    if (!owners.has(owner)) {
      owners.add(owner);
      rooms.push([`sharded-${i}`, owner]);
    }
  }
  for (const [i, c] of clients.entries()) await c.loginAmid(`u${i}`);
  for (const [room, owner] of rooms) {
    for (const c of clients) {
      c.socket.emit('join', room);
      for (;;) {
        const line = await c.line();
        if (line === 'joined room success!') break;
        assert.match(line, /Logged in$|said: /, `before joining ${room}`);
      }
    }
    const counts = await cluster.shardSubscribers(`chathub#room#5#/chat#${room}`);
    assert.deepEqual(counts, counts.map((_, i) => (i === owner ? hubs.length : 0)), `${room}: subscribers per shard`);
    const [first, ...rest] = clients;
    await first.say(`in ${room}`);
    for (const c of rest) {
      for (;;) {
        const line = await c.line();
        if (line === `u0 said: in ${room}`) break;
        assert.match(line, /Logged in$/);
      }
    }
  }
});
