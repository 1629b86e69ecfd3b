'use strict';
// The chapter's chat page, served by the Rust example, in a real headless
// Chromium: two users log in, chat, join a room with /j, and one sees the
// other leave.

const test = require('node:test');
const assert = require('node:assert/strict');
const { startRustExample } = require('./helpers');
const { launch, openChat, screenshot } = require('./browser');

test('two browser tabs chat through the Rust example', async (t) => {
  const server = await startRustExample();
  t.after(() => server.stop());
  const browser = await launch();
  t.after(() => browser.close());

  const ann = await openChat(browser, server.url + '/', 'ann');
  const bob = await openChat(browser, server.url + '/', 'bob');
  await ann.waitForLine('User bob Logged in');

  await ann.type('hello bob');
  await ann.waitForLine('You said: hello bob');
  await bob.waitForLine('ann said: hello bob');

  await ann.type('/j room1');
  await ann.waitForLine('joined room success!');
  await bob.type('/j room1');
  await bob.waitForLine('joined room success!');
  await bob.type('hi in room1');
  await ann.waitForLine('bob said: hi in room1');

  const shot = await screenshot(ann.page, 'rust-example');
  t.diagnostic(`screenshot: ${shot}`);

  await bob.close();
  await ann.waitForLine('User bob disconnected');
  const lines = await ann.lines();
  assert.deepEqual(lines.slice(0, 2), ['Currently logged in as ann', 'User bob Logged in']);
  assert.equal(lines.at(-1), 'User bob disconnected');
});
