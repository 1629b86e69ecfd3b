'use strict';
// Connection state recovery through every face (the Rust, Node and C
// examples with RECOVERY=on), driven by socket.io-client 4.8 as a browser
// page drives it: a client whose transport drops (not a clean disconnect)
// and that comes back within the window keeps its socket id, name and
// room, gets every line it missed, once and in order, before any new one,
// and no login prompt; the others see `User NAME is back`.

const test = require('node:test');
const assert = require('node:assert/strict');
const { EXAMPLES, client, within } = require('./helpers');

const FACES = Object.entries(EXAMPLES).filter(([name]) => name !== 'express');

/** Resolves on the socket's next `connect`. */
function connected(c) {
  return within(new Promise((resolve) => c.socket.once('connect', resolve)), 'a connect');
}

for (const [name, start] of FACES) {
  for (const [transport, opts] of [
    ['websocket', { transports: ['websocket'] }],
    ['long-polling', { transports: ['polling'] }],
  ]) {
    test(`${name}: a client dropped over ${transport} comes back with every line it missed`, async () => {
      const server = await start({ RECOVERY: 'on' });
      const ann = client(server.url, '/chat', opts);
      let bob;
      let lee;
      try {
        // One after another: no one sees another's login before its own.
        await ann.login('ann');
        await ann.join('r1');
        bob = client(server.url, '/chat', opts);
        await bob.login('bob');
        await bob.join('r1');
        lee = client(server.url, '/chat', opts);
        await lee.login('lee');
        await bob.say('before');
        await ann.expectLine('bob said: before');
        const id = ann.socket.id;

        // The transport goes away under the socket (a network drop).
        ann.socket.io.engine.close();
        await ann.disconnected();
        await bob.expectLine('User ann disconnected');
        for (let i = 1; i <= 20; i++) await bob.say(`missed ${i}`);
        await lee.say('in the lobby, not for ann');

        let prompted = false;
        ann.socket.on('login', () => { prompted = true; });
        const back = connected(ann);
        ann.socket.connect();
        await back;
        assert.equal(ann.socket.recovered, true, 'socket.recovered');
        assert.equal(ann.socket.id, id, 'the same id');
        for (let i = 1; i <= 20; i++) await ann.expectLine(`bob said: missed ${i}`);
        await bob.expectLine('User ann is back');
        await bob.say('after');
        await ann.expectLine('bob said: after');
        // Its name and room are kept; no login prompt came.
        await ann.say('hello again');
        await bob.expectLine('ann said: hello again');
        assert.equal(prompted, false, 'no login prompt after a recovery');
        await server.waitForLine(new RegExp(`\\[/chat\\] ${id} is back`));
      } finally {
        for (const c of [ann, bob, lee]) if (c) c.close();
        await server.stop();
      }
    });
  }

  test(`${name}: without RECOVERY a dropped client starts fresh`, async () => {
    const server = await start();
    const ann = client(server.url, '/chat', { transports: ['websocket'] });
    try {
      await ann.login('ann');
      const id = ann.socket.id;
      ann.socket.io.engine.close();
      await ann.disconnected();
      const back = connected(ann);
      ann.socket.connect();
      await back;
      assert.ok(!ann.socket.recovered, 'not recovered');
      assert.notEqual(ann.socket.id, id);
      await ann.login('ann');
    } finally {
      ann.close();
      await server.stop();
    }
  });
}
