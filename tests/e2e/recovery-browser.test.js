'use strict';
// The chapter's page in a headless Chromium with connection state recovery
// on (RECOVERY=on): a user whose connection drops while others chat comes
// back by itself and sees every line they missed, in order, under
// "(reconnected)", still logged in and in their room.

const test = require('node:test');
const assert = require('node:assert/strict');
const { EXAMPLES, client } = require('./helpers');
const { launch, openChat, screenshot } = require('./browser');

for (const name of ['rust', 'node']) {
  test(`the page recovers what it missed through the ${name} example`, async (t) => {
    const server = await EXAMPLES[name]({ RECOVERY: 'on' });
    t.after(() => server.stop());
    const browser = await launch();
    t.after(() => browser.close());

    const ann = await openChat(browser, server.url + '/', 'ann');
    await ann.type('/j room1');
    await ann.waitForLine('joined room success!');
    const bob = client(server.url, '/chat', { transports: ['websocket'] });
    t.after(() => bob.close());
    await bob.login('bob');
    await bob.join('room1');

    // The network drops: the page's transport closes under it. It comes
    // back by itself, here after 3 s (socket.io-client's delay, made fixed).
    await ann.page.evaluate(() => {
      socket.io.reconnectionDelay(3000);
      socket.io.reconnectionDelayMax(3000);
      socket.io.randomizationFactor(0);
      socket.io.engine.close();
    });
    await bob.expectLine('User ann disconnected');
    const missed = ['one', 'two', 'three'];
    for (const text of missed) await bob.say(text);

    await ann.waitForLine('bob said: three');
    await bob.expectLine('User ann is back');
    const lines = await ann.lines();
    const back = lines.lastIndexOf('(reconnected)');
    assert.ok(back >= 0, `no "(reconnected)" in ${JSON.stringify(lines)}`);
    assert.deepEqual(lines.slice(back + 1), missed.map((m) => `bob said: ${m}`));
    assert.ok(!lines.some((l) => l.startsWith('(back as')), 'no second login');
    t.diagnostic(`screenshot: ${await screenshot(ann.page, `recovery-${name}`)}`);

    // Still ann, still in room1.
    await ann.type('I am back');
    await bob.expectLine('ann said: I am back');
  });
}
