'use strict';
// The protocol through an attached Node server (the rules themselves are
// tested in core; this proves the Node face adds and loses nothing).

const test = require('node:test');
const assert = require('node:assert/strict');
const { startAttached, client } = require('./fixture');

test('the chat of PROTOCOL.md through hub.attach', async (t) => {
  const s = await startAttached();
  t.after(() => s.close());

  await t.test('login prompt, login, lobby notices, messages, id names', async () => {
    const anon = client(s.url, '/chat');
    await anon.loginPrompt();
    const ann = client(s.url, '/chat');
    await ann.login('ann');
    await anon.expectLine('User ann Logged in');
    anon.socket.emit('clientMessage', 'no name yet');
    await anon.expectLine('You said: no name yet');
    await ann.expectLine(`${anon.socket.id} said: no name yet`);
    const anonId = anon.socket.id;
    anon.close();
    await ann.expectLine(`User ${anonId} disconnected`);
    ann.close();
  });

  await t.test('rooms: join leaves the last room; lines stay in the room', async () => {
    const a = client(s.url, '/');
    await a.login('a');
    const b = client(s.url, '/');
    await b.login('b');
    await a.expectLine('User b Logged in');
    const c = client(s.url, '/');
    await c.login('c');
    await a.expectLine('User c Logged in');
    await b.expectLine('User c Logged in');
    await a.join('r1');
    await b.join('r1');
    await a.join('r2');
    await c.join('r2');
    await b.say('alone in r1');
    await c.say('r2 talk');
    await a.expectLine('c said: r2 talk');
    b.close();
    await c.say('still r2');
    await a.expectLine('c said: still r2');
    a.close();
    await c.expectLine('User a disconnected');
    c.close();
  });

  await t.test('namespaces are apart', async () => {
    const root = client(s.url, '/');
    await root.login('root');
    const chat = client(s.url, '/chat');
    await chat.login('chat');
    const root2 = client(s.url, '/');
    await root2.login('root2');
    await root.expectLine('User root2 Logged in');
    await chat.say('only /chat');
    await root2.say('only /');
    await root.expectLine('root2 said: only /');
    for (const c of [root, chat, root2]) c.close();
  });

  await t.test('bad input: Error lines, error acks, the socket goes on', async () => {
    const w = client(s.url, '/');
    await w.login('watcher');
    const c = client(s.url, '/');
    await c.loginPrompt();
    assert.deepEqual(await c.ack('login', null), { ok: false, error: 'login needs a name (a string)' });
    await c.expectLine('Error: login needs a name (a string)');
    assert.deepEqual(await c.ack('login', 'x'.repeat(65)), { ok: false, error: 'the name must be at most 64 characters' });
    await c.expectLine('Error: the name must be at most 64 characters');
    assert.deepEqual(await c.ack('join', '  '), { ok: false, error: 'the room name must not be empty' });
    await c.expectLine('Error: the room name must not be empty');
    assert.deepEqual(await c.ack('clientMessage', { not: 'text' }), { ok: false, error: 'a message must be a string' });
    await c.expectLine('Error: a message must be a string');
    c.socket.emit('clientMessage', Buffer.from('binary'));
    await c.expectLine('Error: a message must be a string');
    assert.deepEqual(await c.ack('login', 'ok'), { ok: true });
    await c.expectLine('Currently logged in as ok');
    // Nothing bad reached the watcher: its next line is the good login.
    await w.expectLine('User ok Logged in');
    w.close();
    c.close();
  });

  await t.test('an unknown namespace is refused', async () => {
    const c = client(s.url, '/nope');
    assert.match(await c.connectError(), /Invalid namespace/);
    c.close();
  });
});
