'use strict';
// Prometheus metrics from every example: off by default; METRICS_PATH
// serves them on the chat's port, METRICS_BIND on a port of their own
// (the Rust and Node examples print where). A scrape before and after a
// known chat with socket.io-client shows exact deltas.

const test = require('node:test');
const assert = require('node:assert/strict');
const { EXAMPLES, client } = require('./helpers');

const FACES = ['rust', 'node', 'express', 'c'].filter((f) => EXAMPLES[f]);

/** One scrape: its samples (`name{labels}` → number). */
async function scrape(url) {
  const res = await fetch(url);
  assert.equal(res.status, 200, url);
  assert.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  const samples = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  assert.ok(text.includes('# TYPE chathub_packets_received_total counter\n'), text);
  return {
    text,
    get(name) {
      assert.ok(samples.has(name), `no sample ${name}`);
      return samples.get(name);
    },
  };
}

const EVENTS = 'chathub_packets_received_total{type="event"}';
const CONNECTS = 'chathub_packets_received_total{type="connect"}';
const CHAT_SOCKETS = 'chathub_sockets{namespace="/chat"}';

for (const face of FACES) {
  test(`${face}: no metrics unless asked for`, async () => {
    const server = await EXAMPLES[face]();
    try {
      const res = await fetch(`${server.url}/metrics`);
      const body = await res.text();
      // The Node example answers every other path with its page.
      if (face !== 'node') assert.equal(res.status, 404);
      assert.ok(!body.includes('chathub_'), body.slice(0, 200));
    } finally {
      await server.stop();
    }
  });

  test(`${face}: METRICS_PATH=/metrics follows a chat exactly`, async () => {
    const server = await EXAMPLES[face]({ METRICS_PATH: '/metrics' });
    const url = `${server.url}/metrics`;
    await server.waitForLine(new RegExp(`^metrics at ${server.url}/metrics$`));
    // Scraped before the first client exists (it connects at once).
    const before = await scrape(url);
    assert.equal(before.get(CHAT_SOCKETS), 0);
    const ann = client(server.url, '/chat', { transports: ['websocket'] });
    let bob;
    try {
      await ann.login('ann');
      bob = client(server.url, '/chat', { transports: ['polling'] });
      await bob.login('bob');
      await ann.expectLine('User bob Logged in');
      await ann.say('one');
      await bob.expectLine('ann said: one');
      await ann.say('two');
      await bob.expectLine('ann said: two');
      const after = await scrape(url);
      assert.equal(after.get(CHAT_SOCKETS), 2);
      assert.equal(after.get(CONNECTS) - before.get(CONNECTS), 2);
      // Two logins, two lines.
      assert.equal(after.get(EVENTS) - before.get(EVENTS), 4);
      // Lines: bob's login notice to ann, ann's two lines to bob.
      assert.equal(after.get('chathub_broadcasts_total') - before.get('chathub_broadcasts_total'), 4);
      assert.equal(
        after.get('chathub_packets_sent_total{kind="broadcast"}')
          - before.get('chathub_packets_sent_total{kind="broadcast"}'),
        3,
      );
      assert.equal(after.get('chathub_connections{transport="websocket"}'), 1);
      assert.equal(after.get('chathub_connections{transport="polling"}'), 1);
      assert.ok(after.get('chathub_received_bytes_total') > before.get('chathub_received_bytes_total'));
      assert.ok(after.get('chathub_sent_bytes_total') > before.get('chathub_sent_bytes_total'));
    } finally {
      ann.close();
      if (bob) bob.close();
      await server.stop();
    }
  });

  if (face === 'c') continue; // the C example prints no METRICS_BIND address
  test(`${face}: METRICS_BIND serves them on a port of their own`, async () => {
    const server = await EXAMPLES[face]({ METRICS_BIND: '127.0.0.1:0' });
    try {
      const line = await server.waitForLine(/^metrics at http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      const url = line.slice('metrics at '.length);
      assert.notEqual(new URL(url).port, new URL(server.url).port);
      const c = client(server.url, '/chat', { transports: ['websocket'] });
      try {
        await c.login('cy');
        const s = await scrape(url);
        assert.equal(s.get(CHAT_SOCKETS), 1);
        assert.equal(s.get(EVENTS), 1);
      } finally {
        c.close();
      }
      // Not on the chat's port.
      const res = await fetch(`${server.url}/metrics`);
      assert.ok(!(await res.text()).includes('chathub_'));
    } finally {
      await server.stop();
    }
  });
}
