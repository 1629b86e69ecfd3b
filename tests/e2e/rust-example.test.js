'use strict';
// The Rust example server with the reference client (socket.io-client 4):
// the chapter's chat over every transport, its page and client bundle,
// its logs, and a clean stop on SIGTERM.

const test = require('node:test');
const assert = require('node:assert/strict');
const { startRustExample, client } = require('./helpers');

test('the Rust example serves the chapter chat', async (t) => {
  const server = await startRustExample();
  t.after(() => server.stop());

  await t.test('page and client bundle from the same origin', async () => {
    const page = await fetch(server.url + '/');
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /<script src="\/socket.io\/socket.io.js">/);
    const bundle = await fetch(server.url + '/socket.io/socket.io.js');
    assert.equal(bundle.status, 200);
    assert.match(await bundle.text(), /Socket\.IO v4/);
  });

  for (const [name, opts] of [
    ['websocket only', { transports: ['websocket'] }],
    ['polling only', { transports: ['polling'] }],
    ['polling upgraded to websocket', {}],
  ]) {
    await t.test(`chat over ${name}`, async () => {
      // A fresh server: notices from other subtests cannot interleave.
      const own = await startRustExample();
      const ann = client(own.url, '/chat', opts);
      let bob;
      try {
        await ann.login('ann');
        bob = client(own.url, '/chat', opts);
        await bob.login('bob');
        await ann.expectLine('User bob Logged in');
        await bob.say('hello');
        await ann.expectLine('bob said: hello');
        await ann.join('r1');
        await ann.say('alone in r1');
        await bob.join('r1');
        await bob.say('with you');
        await ann.expectLine('bob said: with you');
        if (name.startsWith('polling upgraded')) {
          assert.equal(ann.socket.io.engine.transport.name, 'websocket');
        }
        bob.close();
        await ann.expectLine('User bob disconnected');
      } finally {
        ann.close();
        if (bob) bob.close();
        await own.stop();
      }
    });
  }

  await t.test('acks answer {ok} and bad input gets an Error line', async () => {
    const c = client(server.url, '/');
    try {
      await c.loginPrompt();
      assert.deepEqual(await c.ack('login', 'carol'), { ok: true });
      await c.expectLine('Currently logged in as carol');
      assert.deepEqual(await c.ack('join', ''), { ok: false, error: 'the room name must not be empty' });
      await c.expectLine('Error: the room name must not be empty');
      assert.deepEqual(await c.ack('clientMessage', 12), { ok: false, error: 'a message must be a string' });
      await c.expectLine('Error: a message must be a string');
      await c.say('still here');
    } finally {
      c.close();
    }
  });

  await t.test("the chapter's `my event` is logged by the host", async () => {
    const c = client(server.url, '/');
    try {
      await c.loginPrompt();
      c.socket.emit('my event', 'Hello world.');
      await server.waitForLine(/^Hello world\.$/);
    } finally {
      c.close();
    }
  });
});

test('SIGTERM stops the example cleanly and clients see a disconnect', async () => {
  const server = await startRustExample();
  const ws = client(server.url, '/chat', { transports: ['websocket'] });
  const poll = client(server.url, '/', { transports: ['polling'] });
  await ws.login('ws');
  await poll.loginPrompt();
  const exited = server.stop('SIGTERM');
  assert.equal(await ws.disconnected(), 'io server disconnect');
  assert.equal(await poll.disconnected(), 'io server disconnect');
  const { code } = await exited;
  assert.equal(code, 0);
  assert.ok(server.lines.includes('chathub stopped'));
});
