'use strict';
// Every example host (the Rust example, the Node example, the Express
// example) with the reference client, socket.io-client 4.8: the chapter's
// chat over every transport, its page and client bundle, its logs, and a
// clean stop on SIGTERM.

const test = require('node:test');
const assert = require('node:assert/strict');
const { EXAMPLES, client, expectPageAndBundle } = require('./helpers');

for (const [name, start] of Object.entries(EXAMPLES)) {
  test(`the ${name} example serves the chapter's chat`, async (t) => {
    await t.test('page and client bundle from the same origin', async () => {
      const server = await start();
      try {
        await expectPageAndBundle(server.url);
      } finally {
        await server.stop();
      }
    });

    for (const [transport, opts] of [
      ['websocket only', { transports: ['websocket'] }],
      ['polling only', { transports: ['polling'] }],
      ['polling upgraded to websocket', {}],
    ]) {
      await t.test(`chat over ${transport}`, async () => {
        // A fresh server: notices from other subtests cannot interleave.
        const server = await start();
        const ann = client(server.url, '/chat', opts);
        let bob;
        try {
          await ann.login('ann');
          bob = client(server.url, '/chat', opts);
          await bob.login('bob');
          await ann.expectLine('User bob Logged in');
          await bob.say('hello');
          await ann.expectLine('bob said: hello');
          await ann.join('r1');
          await ann.say('alone in r1');
          await bob.join('r1');
          await bob.say('with you');
          await ann.expectLine('bob said: with you');
          if (!opts.transports) assert.equal(ann.socket.io.engine.transport.name, 'websocket');
          bob.close();
          await ann.expectLine('User bob disconnected');
        } finally {
          ann.close();
          if (bob) bob.close();
          await server.stop();
        }
      });
    }

    await t.test("acks, Error lines, and the chapter's `my event` in the log", async () => {
      const server = await start();
      const c = client(server.url, '/');
      try {
        await c.loginPrompt();
        assert.deepEqual(await c.ack('login', 'carol'), { ok: true });
        await c.expectLine('Currently logged in as carol');
        assert.deepEqual(await c.ack('join', ''), { ok: false, error: 'the room name must not be empty' });
        await c.expectLine('Error: the room name must not be empty');
        c.socket.emit('my event', 'Hello world.');
        await server.waitForLine(/^Hello world\.$/);
        await c.say('still here');
      } finally {
        c.close();
        await server.stop();
      }
    });

    await t.test('SIGTERM stops it cleanly; clients see their transport close', async () => {
      const server = await start();
      const ws = client(server.url, '/chat', { transports: ['websocket'] });
      const poll = client(server.url, '/', { transports: ['polling'] });
      await ws.login('ws');
      await poll.loginPrompt();
      const exited = server.stop('SIGTERM');
      // No DISCONNECT: socket.io-client reconnects after a transport close.
      assert.equal(await ws.disconnected(), 'transport close');
      assert.equal(await poll.disconnected(), 'transport close');
      const { code } = await exited;
      assert.equal(code, 0);
    });
  });
}
