'use strict';
// Issue 12's attacks that need a browser, in a real headless Chromium
// against the Rust and the Node example: a page of another origin may not
// open a socket to the hub; the chapter's page takes only a namespace path
// from its URL; and a tab whose hub restarts reconnects by itself, logs in
// again and is back in its room.

const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { EXAMPLES, within } = require('./helpers');
const { launch, openChat } = require('./browser');

/** A server of another origin: serves a blank page, counts requests. */
async function otherOrigin() {
  const seen = [];
  const server = http.createServer((req, res) => {
    seen.push(req.url);
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<!DOCTYPE html><title>elsewhere</title>');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, seen, close: () => server.close() };
}

/** Waits until `chat` shows the line `text` at least `n` times. */
function waitForCount(chat, text, n) {
  return within(
    chat.page.waitForFunction(
      ([t, k]) => [...document.querySelectorAll('#message > div')].filter((d) => d.textContent === t).length >= k,
      [text, n],
      { timeout: 0, polling: 50 },
    ),
    `${n} lines ${JSON.stringify(text)}`,
  );
}

/** What a page gets trying to open a WebSocket and a long-poll to `hub`. */
function tryHub(page, hub) {
  return page.evaluate(async (base) => {
    const ws = await new Promise((resolve) => {
      const s = new WebSocket(`${base.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`);
      s.onmessage = (e) => { resolve(`open: ${String(e.data).slice(0, 8)}`); s.close(); };
      s.onerror = () => resolve('refused');
    });
    const polling = await fetch(`${base}/socket.io/?EIO=4&transport=polling`)
      .then((r) => `HTTP ${r.status}`, () => 'blocked');
    return { ws, polling };
  }, hub);
}

for (const name of ['rust', 'node']) {
  test(`a page of another origin cannot reach the ${name} example's hub; its own page can`, async (t) => {
    const hub = await EXAMPLES[name]();
    t.after(() => hub.stop());
    const other = await otherOrigin();
    t.after(() => other.close());
    const browser = await launch();
    t.after(() => browser.close());
    const page = await (await browser.newContext()).newPage();

    await page.goto(`${other.url}/`);
    assert.deepEqual(await tryHub(page, hub.url), { ws: 'refused', polling: 'blocked' });

    page.on('dialog', (d) => d.dismiss());
    await page.goto(`${hub.url}/`);
    assert.deepEqual(await tryHub(page, hub.url), { ws: 'open: 0{"sid":', polling: 'HTTP 200' });
  });
}

test("the chapter's page ignores a namespace that is not a path (?ns=http://…)", async (t) => {
  const hub = await EXAMPLES.rust();
  t.after(() => hub.stop());
  const other = await otherOrigin();
  t.after(() => other.close());
  const browser = await launch();
  t.after(() => browser.close());
  // The page logs in on the hub's own /chat, not at the other server.
  const chat = await openChat(browser, `${hub.url}/?ns=${encodeURIComponent(`${other.url}/chat`)}`, 'ann');
  await hub.waitForLine(/^\[\/chat\] \S+ logged in as ann$/);
  assert.deepEqual(other.seen, [], 'nothing reached the other server');
  await chat.close();
});

test('a tab whose hub restarts reconnects, logs in again and is back in its room', async (t) => {
  let hub = await EXAMPLES.rust();
  t.after(() => hub.stop());
  const { port } = new URL(hub.url);
  const browser = await launch();
  t.after(() => browser.close());
  const ann = await openChat(browser, `${hub.url}/`, 'ann');
  const bob = await openChat(browser, `${hub.url}/`, 'bob');
  const carol = await openChat(browser, `${hub.url}/`, 'carol');
  for (const c of [ann, bob]) {
    await c.type('/j secret');
    await c.waitForLine('joined room success!');
  }

  // SIGTERM: the hub closes every connection without a DISCONNECT.
  await hub.stop('SIGTERM');
  await ann.waitForLine('(disconnected: transport close)');
  hub = await EXAMPLES.rust({ PORT: port });

  // The pages come back by themselves, with their names, in their room.
  await ann.waitForLine('(back as ann in room secret)');
  await bob.waitForLine('(back as bob in room secret)');
  await carol.waitForLine('(back as carol)');
  for (const c of [ann, bob]) await waitForCount(c, 'joined room success!', 2);
  await bob.type('after the restart');
  await ann.waitForLine('bob said: after the restart');
  // Not in the lobby: carol (there) did not get it. Her own echo comes
  // after anything that was sent to her before it.
  await carol.type('lobby check');
  await carol.waitForLine('You said: lobby check');
  assert.ok(!(await carol.lines()).includes('bob said: after the restart'), 'the line stayed in the room');
  await Promise.all([ann.close(), bob.close(), carol.close()]);
});
