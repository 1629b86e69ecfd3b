'use strict';
// The benchmarks' reference server (bench/reference/server.js, plain
// socket.io 4.8) must run the chat of docs/PROTOCOL.md, or the comparison
// in docs/BENCHMARKS.md compares different work. Driven by socket.io-client
// like the examples. Needs `npm ci` in bench/reference (scripts/setup.sh).

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { ROOT, startServer, client } = require('./helpers');

const DIR = path.join(ROOT, 'bench', 'reference');
const installed = fs.existsSync(path.join(DIR, 'node_modules', 'socket.io'));

function startReference() {
  return startServer(process.execPath, [path.join(DIR, 'server.js')]);
}

test('the socket.io reference runs the protocol of PROTOCOL.md', { skip: !installed && 'npm ci in bench/reference first' }, async (t) => {
  const server = await startReference();
  t.after(() => server.stop());

  await t.test('lobby, login notices, rooms, messages, disconnect', async () => {
    const ann = client(server.url, '/chat', { transports: ['websocket'] });
    let bob;
    try {
      await ann.loginPrompt();
      ann.socket.emit('login', '  ann ');
      await ann.expectLine('Currently logged in as ann');
      bob = client(server.url, '/chat');
      await bob.loginPrompt();
      bob.socket.emit('clientMessage', 'before login');
      await bob.expectLine('You said: before login');
      await ann.expectLine(`${bob.socket.id} said: before login`);
      bob.socket.emit('login', 'bob');
      await bob.expectLine('Currently logged in as bob');
      await ann.expectLine('User bob Logged in');
      await bob.join('r1');
      await bob.say('in r1');
      await ann.say('in the lobby');
      await ann.join('r1');
      await bob.say('together');
      await ann.expectLine('bob said: together');
      bob.close();
      await ann.expectLine('User bob disconnected');
    } finally {
      ann.close();
      if (bob) bob.close();
    }
  });

  await t.test('namespaces are separate; others are refused', async () => {
    const root = client(server.url, '/');
    const chat = client(server.url, '/chat');
    const other = client(server.url, '/nope');
    try {
      await root.login('r');
      await chat.login('c');
      await root.say('only on /');
      await chat.say('only on /chat');
      assert.equal(await other.connectError(), 'Invalid namespace');
    } finally {
      root.close();
      chat.close();
      other.close();
    }
  });

  await t.test('Error lines and acks', async () => {
    const c = client(server.url, '/chat');
    try {
      await c.loginPrompt();
      const cases = [
        [['login'], 'login needs a name (a string)'],
        [['login', 5], 'login needs a name (a string)'],
        [['login', '   '], 'the name must not be empty'],
        [['login', 'é'.repeat(65)], 'the name must be at most 64 characters'],
        [['join', null], 'join needs a room name (a string)'],
        [['join', ''], 'the room name must not be empty'],
        [['join', 'x'.repeat(65)], 'the room name must be at most 64 characters'],
        [['clientMessage', { a: 1 }], 'a message must be a string'],
        [['clientMessage', Buffer.from('bin')], 'a message must be a string'],
        [['clientMessage', 'x'.repeat(10001)], 'a message must be at most 10000 characters'],
      ];
      for (const [args, error] of cases) {
        assert.deepEqual(await c.ack(...args), { ok: false, error }, JSON.stringify(args).slice(0, 60));
        await c.expectLine(`Error: ${error}`);
      }
      assert.deepEqual(await c.ack('login', 'é'.repeat(64)), { ok: true });
      await c.expectLine(`Currently logged in as ${'é'.repeat(64)}`);
      assert.deepEqual(await c.ack('join', ' r2 '), { ok: true });
      await c.expectLine('joined room success!');
      assert.deepEqual(await c.ack('clientMessage', 'x'.repeat(10000)), { ok: true });
      await c.expectLine(`You said: ${'x'.repeat(10000)}`);
      c.socket.emit('clientMessage', '');
      await c.expectLine('You said: ');
    } finally {
      c.close();
    }
  });

  await t.test("the chapter's `my event` is logged", async () => {
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
