'use strict';
// The chapter's chat page in a real headless Chromium, served by the Rust
// example and by the Node example: two users answer the login prompt,
// chat, join a room with /j, and one sees the other leave.

const test = require('node:test');
const assert = require('node:assert/strict');
const { EXAMPLES } = require('./helpers');
const { launch, twoTabsChat } = require('./browser');

for (const name of ['rust', 'node']) {
  test(`two browser tabs chat through the ${name} example`, async (t) => {
    const server = await EXAMPLES[name]();
    t.after(() => server.stop());
    const browser = await launch();
    t.after(() => browser.close());

    const { lines, screenshot } = await twoTabsChat(browser, server.url + '/', `${name}-example`);
    t.diagnostic(`screenshot: ${screenshot}`);
    assert.deepEqual(lines.slice(0, 2), ['Currently logged in as ann', 'User bob Logged in']);
    assert.equal(lines.at(-1), 'User bob disconnected');
  });
}
