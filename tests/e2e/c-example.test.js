'use strict';
// The C example (examples/c/chat_server, built by `make -C examples/c`) with
// the reference client: the chapter's page and bundle, the chat over both
// transports, the chapter's log lines (`console.log(content)` for
// `my event`), the page in a headless Chromium, and clean stops on SIGINT
// and SIGTERM.
//
//   CHATHUB_C_EXAMPLE=path/to/chat_server   (default: examples/c/chat_server)
//   CHATHUB_C_EXAMPLE_CWD=dir               where it runs (default: the repository)
//   CHATHUB_C_EXAMPLE_BUNDLE=dir            the folder it must serve the client
//                                           bundle from (an installed one)

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { ROOT, startServer, client, expectPageAndBundle } = require('./helpers');
const { launch, twoTabsChat } = require('./browser');

const BIN = process.env.CHATHUB_C_EXAMPLE || path.join(ROOT, 'examples', 'c', 'chat_server');
const CWD = process.env.CHATHUB_C_EXAMPLE_CWD || ROOT;
const BUNDLE = process.env.CHATHUB_C_EXAMPLE_BUNDLE;
const skip = fs.existsSync(BIN) ? false : `${BIN} is not built (make -C examples/c)`;

test('the C example serves the chapter chat', { skip }, async (t) => {
  const server = await startServer(BIN, [], {}, { cwd: CWD });
  assert.match(server.lines[0], /^chathub C chat server listening on http:\/\/127\.0\.0\.1:\d+\/$/);
  t.after(() => server.stop());
  const served = (await server.waitForLine(/^client bundle from /)).slice('client bundle from '.length);
  if (BUNDLE) assert.equal(served, BUNDLE, 'the bundle is served from the installed location');

  await t.test('page and client bundle', async () => {
    await expectPageAndBundle(server.url);
  });

  await t.test('chat over WebSocket and polling, logged as the chapter does', async () => {
    const ann = client(server.url, '/chat', { transports: ['websocket'] });
    let bob;
    try {
      await ann.login('ann');
      // Only now: a bob already in the lobby would get ann's notice before
      // his own login reply.
      bob = client(server.url, '/chat', { transports: ['polling'] });
      await bob.login('bob');
      await ann.expectLine('User bob Logged in');
      await bob.say('hello');
      await ann.expectLine('bob said: hello');
      await ann.join('r1');
      await server.waitForLine(/^\[\/chat\] \S+ logged in as ann$/);
      await server.waitForLine(/^\[\/chat\] bob: hello$/);
      await server.waitForLine(/^\[\/chat\] ann joined r1$/);
      ann.socket.emit('my event', 'Hello world.');
      await server.waitForLine(/^Hello world\.$/);
      bob.close();
      await server.waitForLine(/^\[\/chat\] bob disconnected \(client namespace disconnect\)$/);
    } finally {
      ann.close();
      bob?.close();
    }
  });
});

test('two browser tabs chat through the C example', { skip }, async (t) => {
  const server = await startServer(BIN, [], {}, { cwd: CWD });
  t.after(() => server.stop());
  const browser = await launch();
  t.after(() => browser.close());

  const { screenshot } = await twoTabsChat(browser, server.url + '/', 'c-example');
  t.diagnostic(`screenshot: ${screenshot}`);
  await server.waitForLine(/ ann: hello bob$/);
  await server.waitForLine(/ bob joined room1$/);
  await server.waitForLine(/ bob disconnected \(/);
});

// A C host does not ignore SIGPIPE (Rust and Node programs do): a write to
// a client that reset its connection must not kill it.
test('clients that reset their connection while lines reach them do not kill the C example', { skip }, async () => {
  const WebSocket = require('ws');
  const server = await startServer(BIN, [], { FLOOD_LIMITS: 'off' }, { cwd: CWD });
  try {
    const ws = `${server.url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`;
    const open = () => new Promise((resolve, reject) => {
      const s = new WebSocket(ws);
      s.on('error', reject);
      s.on('message', (m) => {
        const t = m.toString();
        if (t.startsWith('0')) s.send('40/chat,');
        if (t === '42/chat,["login"]') resolve(s);
      });
    });
    const talker = client(server.url, '/chat', { transports: ['websocket'] });
    await talker.login('talker');
    const died = server.exited.then((e) => {
      throw new Error(`the C example exited during the test: ${JSON.stringify(e)}`);
    });
    died.catch(() => {});
    for (let round = 0; round < 5; round++) {
      const victims = await Promise.all(Array.from({ length: 20 }, open));
      // Lines for every one of them, then their connections reset under
      // the hub's writes.
      for (let i = 0; i < 50; i++) talker.socket.emit('clientMessage', `line ${round}.${i}`);
      for (const v of victims) v._socket.resetAndDestroy();
      for (let i = 0; i < 50; i++) talker.socket.emit('clientMessage', `after ${round}.${i}`);
      talker.socket.emit('clientMessage', `round ${round} done`);
      for (;;) {
        const line = await Promise.race([talker.line(), died]);
        if (line === `You said: round ${round} done`) break;
        if (!/^(You said: (line|after) |User \S+ disconnected$)/.test(line)) throw new Error(`unexpected line ${line}`);
      }
    }
    talker.close();
    assert.equal(server.child.exitCode, null, 'still running');
    assert.equal(server.child.signalCode, null, 'no signal killed it');
  } finally {
    await server.stop();
  }
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  test(`${signal} stops the C example cleanly with a client connected`, { skip }, async () => {
    const server = await startServer(BIN, [], {}, { cwd: CWD });
    const c = client(server.url, '/chat', { transports: ['websocket'] });
    try {
      await c.login('leaving');
      const exited = server.stop(signal);
      assert.equal(await c.disconnected(), 'transport close');
      const { code } = await exited;
      assert.equal(code, 0, server.stderr());
      assert.ok(server.lines.includes('chathub stopped'));
      assert.ok(server.lines.some((l) => /^\[\/chat\] leaving disconnected \(server shutting down\)$/.test(l)));
    } finally {
      c.close();
    }
  });
}
