'use strict';
// The chapter's chat page in a real headless Chromium, served by the Rust
// example and by the Node example: two users answer the login prompt,
// chat, join a room with /j, and one sees the other leave.

const test = require('node:test');
const assert = require('node:assert/strict');
const { EXAMPLES } = require('./helpers');
const { launch, openChat, screenshot } = require('./browser');

for (const name of ['rust', 'node']) {
  test(`two browser tabs chat through the ${name} example`, async (t) => {
    const server = await EXAMPLES[name]();
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

    t.diagnostic(`screenshot: ${await screenshot(ann.page, `${name}-example`)}`);

    await bob.close();
    await ann.waitForLine('User bob disconnected');
    const lines = await ann.lines();
    assert.deepEqual(lines.slice(0, 2), ['Currently logged in as ann', 'User bob Logged in']);
    assert.equal(lines.at(-1), 'User bob disconnected');
  });
}
