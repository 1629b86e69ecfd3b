'use strict';
// The hub's logs from every example: plain text without colour codes when
// standard error is not a terminal, or one JSON object per line with
// LOG_FORMAT=json (level, target, message, fields), for log collectors.

const test = require('node:test');
const assert = require('node:assert/strict');
const { EXAMPLES, client } = require('./helpers');

const FACES = ['rust', 'node', 'c'].filter((f) => EXAMPLES[f]);

for (const face of FACES) {
  test(`${face}: LOG_FORMAT=json gives one JSON object per line`, async () => {
    const server = await EXAMPLES[face]({ LOG_FORMAT: 'json', RUST_LOG: 'chathub=debug' });
    const c = client(server.url, '/chat', { transports: ['websocket'] });
    try {
      await c.login('ann');
    } finally {
      c.close();
      await server.stop();
    }
    const lines = server.stderr().split('\n').filter((l) => l.length > 0);
    assert.ok(lines.length > 0, 'some log lines');
    for (const line of lines) {
      const v = JSON.parse(line); // throws on a line that is not JSON
      assert.ok(['error', 'warn', 'info', 'debug', 'trace'].includes(v.level), line);
      assert.equal(typeof v.ts, 'number', line);
      assert.equal(typeof v.message, 'string', line);
      assert.equal(typeof v.fields, 'object', line);
    }
    assert.ok(lines.some((l) => JSON.parse(l).target.startsWith('chathub')), 'the hub logged');
  });

  test(`${face}: plain logs carry no colour codes off a terminal`, async () => {
    const server = await EXAMPLES[face]({ RUST_LOG: 'chathub=debug' });
    await server.stop();
    const text = server.stderr();
    assert.ok(text.includes('chathub'), text);
    assert.ok(!text.includes('\u001b['), 'no ANSI escape codes');
  });
}
