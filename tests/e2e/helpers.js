'use strict';
// Shared helpers of the end-to-end tests: start a hub host as a child
// process, connect real socket.io-client sockets, and wait for events
// (never sleep-and-hope: every wait is for an event, bounded by WAIT_MS).

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const path = require('node:path');
const readline = require('node:readline');
const { io } = require('socket.io-client');

const ROOT = path.resolve(__dirname, '..', '..');
/** How long any wait may take (CHATHUB_E2E_WAIT_MS: longer under valgrind). */
const WAIT_MS = Number(process.env.CHATHUB_E2E_WAIT_MS) || 10_000;
/** Cargo's target directory (CARGO_TARGET_DIR, as cargo itself reads it). */
const TARGET_DIR = process.env.CARGO_TARGET_DIR
  ? path.resolve(ROOT, process.env.CARGO_TARGET_DIR)
  : path.join(ROOT, 'target');

/** Rejects after `ms` with `what` in the message. */
function within(promise, what, ms = WAIT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Starts a server process that prints `listening on http(s)://HOST:PORT/`.
 * Returns { url, child, lines, waitForLine(re), stop() }.
 */
async function startServer(command, args, env = {}, { cwd = ROOT } = {}) {
  const child = spawn(command, args, {
    cwd,
    env: { ...process.env, PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines = [];
  const waiters = [];
  const rl = readline.createInterface({ input: child.stdout });
  rl.on('line', (line) => {
    lines.push(line);
    for (const w of [...waiters]) {
      if (w.re.test(line)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));

  function waitForLine(re, what = String(re)) {
    const seen = lines.find((l) => re.test(l));
    if (seen) return Promise.resolve(seen);
    return within(new Promise((resolve) => waiters.push({ re, resolve })), `server line ${what}`);
  }

  const first = await within(
    Promise.race([
      waitForLine(/listening on (https?:\/\/\S+)/),
      exited.then((e) => { throw new Error(`server exited early (${JSON.stringify(e)}): ${stderr}`); }),
    ]),
    'the server to listen',
  );
  const url = first.match(/(https?:\/\/[^/\s]+)/)[1];
  return {
    url,
    child,
    lines,
    waitForLine,
    exited,
    stderr: () => stderr,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return within(exited, 'the server to exit');
    },
  };
}

/** The Rust example (built by `cargo build -p chathub --example chat-server`). */
function startRustExample(env) {
  const bin = process.env.CHATHUB_RUST_EXAMPLE
    || path.join(TARGET_DIR, 'debug', 'examples', 'chat-server');
  return startServer(bin, [], env);
}

/** The Node example (plain http server + hub.attach). */
function startNodeExample(env) {
  return startServer(process.execPath, [path.join(ROOT, 'examples', 'node', 'chat-server.js')], env);
}

/** The Express example. */
function startExpressExample(env) {
  return startServer(process.execPath, [path.join(ROOT, 'examples', 'node', 'express-server.js')], env);
}

/** The C example (built by `make -C examples/c`); null when not built. */
const C_EXAMPLE = process.env.CHATHUB_C_EXAMPLE || path.join(ROOT, 'examples', 'c', 'chat_server');
function startCExample(env) {
  return startServer(C_EXAMPLE, [], env);
}

/** Every example host, by name (the C one once it is built). */
const EXAMPLES = {
  rust: startRustExample,
  node: startNodeExample,
  express: startExpressExample,
  ...(require('node:fs').existsSync(C_EXAMPLE) ? { c: startCExample } : {}),
};

/**
 * A socket.io-client socket that records what it receives.
 * `line()` resolves with the next serverMessage text.
 */
/** Asserts that `url` serves the chapter's page and the client bundle. */
async function expectPageAndBundle(url) {
  const page = await fetch(url + '/');
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<script src="\/socket.io\/socket.io.js">/);
  const bundle = await fetch(url + '/socket.io/socket.io.js');
  assert.equal(bundle.status, 200);
  assert.match(await bundle.text(), /Socket\.IO v4/);
}

function client(url, ns = '/chat', opts = {}) {
  const socket = io(url + ns, { forceNew: true, reconnection: false, ...opts });
  const inbox = [];
  const waiting = [];
  function push(item) {
    const w = waiting.findIndex((x) => x.match(item));
    if (w >= 0) {
      const [x] = waiting.splice(w, 1);
      x.resolve(item);
    } else {
      inbox.push(item);
    }
  }
  socket.on('serverMessage', (text) => push({ kind: 'line', text }));
  socket.on('login', () => push({ kind: 'login' }));
  socket.on('disconnect', (reason) => push({ kind: 'disconnect', reason }));
  socket.on('connect_error', (err) => push({ kind: 'connect_error', message: err.message }));
  socket.onAny((event, ...args) => {
    if (event !== 'serverMessage' && event !== 'login') push({ kind: 'event', event, args });
  });

  function next(match, what) {
    const i = inbox.findIndex(match);
    if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0]);
    return within(new Promise((resolve) => waiting.push({ match, resolve })), what);
  }
  const api = {
    socket,
    /** The next serverMessage (in order). */
    async line() {
      const item = await next((x) => x.kind === 'line', 'a serverMessage');
      return item.text;
    },
    /** Asserts the next serverMessage is `text`. */
    async expectLine(text) {
      const got = await api.line();
      if (got !== text) throw new Error(`expected line ${JSON.stringify(text)}, got ${JSON.stringify(got)}`);
    },
    loginPrompt: () => next((x) => x.kind === 'login', 'the login prompt'),
    /** Waits until the socket is in (its login prompt came), leaving the prompt for `login`. */
    async joined() {
      inbox.unshift(await next((x) => x.kind === 'login', 'the login prompt'));
    },
    disconnected: () => next((x) => x.kind === 'disconnect', 'a disconnect').then((x) => x.reason),
    connectError: () => next((x) => x.kind === 'connect_error', 'a connect_error').then((x) => x.message),
    event: (name) => next((x) => x.kind === 'event' && x.event === name, `event ${name}`).then((x) => x.args),
    /** Emits and resolves with the ack's first argument. */
    ack(event, ...args) {
      return within(socket.timeout(WAIT_MS).emitWithAck(event, ...args), `the ack of ${event}`);
    },
    async login(name) {
      await api.loginPrompt();
      socket.emit('login', name);
      await api.expectLine(`Currently logged in as ${name}`);
    },
    /**
     * Logs in where other hubs' login notices may still be on their way
     * (they may arrive before our own reply).
     */
    async loginAmid(name) {
      await api.loginPrompt();
      socket.emit('login', name);
      for (;;) {
        const line = await api.line();
        if (line === `Currently logged in as ${name}`) return;
        if (!line.endsWith('Logged in')) throw new Error(`unexpected before our login: ${line}`);
      }
    },
    async join(room) {
      socket.emit('join', room);
      await api.expectLine('joined room success!');
    },
    async say(text) {
      socket.emit('clientMessage', text);
      await api.expectLine(`You said: ${text}`);
    },
    close() { socket.disconnect(); },
  };
  return api;
}

module.exports = {
  ROOT, TARGET_DIR, WAIT_MS, EXAMPLES, within, startServer, startRustExample, startNodeExample, startExpressExample, client,
  expectPageAndBundle,
};
