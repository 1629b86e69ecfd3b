'use strict';
// A real redis-server for the scale-out tests, on a port the OS picked;
// stoppable and restartable on the same port (for outages).

const { spawn } = require('node:child_process');
const net = require('node:net');
const readline = require('node:readline');
const { within } = require('./helpers');

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

class RedisServer {
  /**
   * `tls`: `{ cert, key, ca }` (PEM files) for a Redis that speaks TLS only,
   * with the ACL user `alice` (password `s3cret`) and no default user.
   */
  constructor(port, tls, extra = []) {
    this.port = port;
    this.tls = tls;
    this.extra = extra;
    this.child = null;
  }

  /** `extra`: more arguments for redis-server (a plain port only). */
  static async start(tls, extra = []) {
    for (let attempt = 0; attempt < 5; attempt++) {
      const server = new RedisServer(await freePort(), tls, extra);
      if (await server.spawn()) return server;
    }
    throw new Error('could not start redis-server');
  }

  get url() {
    return this.tls
      ? `rediss://alice:s3cret@127.0.0.1:${this.port}`
      : `redis://127.0.0.1:${this.port}`;
  }

  /** Starts redis-server; resolves true once it accepts connections. */
  spawn() {
    const listen = this.tls
      ? ['--port', '0', '--tls-port', String(this.port), '--tls-cert-file', this.tls.cert,
        '--tls-key-file', this.tls.key, '--tls-ca-cert-file', this.tls.ca, '--tls-auth-clients', 'no',
        '--user', 'default', 'off', '--user', 'alice', 'on', '>s3cret', '~*', '&*', '+@all']
      : ['--port', String(this.port)];
    const child = spawn('redis-server', [
      ...listen, '--bind', '127.0.0.1',
      '--save', '', '--appendonly', 'no', '--loglevel', 'notice', ...this.extra,
    ], { stdio: ['ignore', 'pipe', 'ignore'] });
    return within(new Promise((resolve) => {
      child.on('error', () => resolve(false));
      child.on('exit', () => resolve(false));
      readline.createInterface({ input: child.stdout }).on('line', (line) => {
        if (line.includes('Ready to accept connections')) {
          this.child = child;
          resolve(true);
        }
      });
    }), 'redis-server to start');
  }

  /** Stops Redis: the outage begins. */
  async stop() {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.on('exit', resolve));
    child.kill('SIGKILL');
    await within(exited, 'redis-server to stop');
  }

  /** Starts Redis again on the same port: the outage ends. */
  async restart() {
    for (let attempt = 0; attempt < 20; attempt++) {
      if (await this.spawn()) return;
    }
    throw new Error('redis-server did not come back');
  }
}

/**
 * One RESP reply from `buf` at `at`: `[value, end]`, or null when `buf`
 * does not hold all of it yet. Errors are Error values.
 */
function parseReply(buf, at = 0) {
  const eol = buf.indexOf('\r\n', at);
  if (eol < 0) return null;
  const kind = String.fromCharCode(buf[at]);
  const head = buf.toString('utf8', at + 1, eol);
  switch (kind) {
    case '+': return [head, eol + 2];
    case '-': return [new Error(head), eol + 2];
    case ':': return [Number(head), eol + 2];
    case '$': {
      const len = Number(head);
      if (len < 0) return [null, eol + 2];
      if (buf.length < eol + 2 + len + 2) return null;
      return [buf.toString('utf8', eol + 2, eol + 2 + len), eol + 2 + len + 2];
    }
    case '*': {
      const n = Number(head);
      const items = [];
      let next = eol + 2;
      for (let i = 0; i < n; i++) {
        const item = parseReply(buf, next);
        if (!item) return null;
        items.push(item[0]);
        next = item[1];
      }
      return [items, next];
    }
    default: throw new Error(`unexpected RESP reply: ${buf.toString('utf8', at, eol)}`);
  }
}

/** Sends one command to the Redis on `port`; resolves with its reply. */
function command(port, args) {
  return within(new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    socket.on('error', reject);
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      const reply = parseReply(buf);
      if (!reply) return;
      socket.end();
      if (reply[0] instanceof Error) reject(reply[0]);
      else resolve(reply[0]);
    });
    socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`).join('')}`);
  }), `redis ${args[0]}`);
}

/**
 * A Redis Cluster of `n` masters (each an equal share of the 16384 slots),
 * on ports the OS picked (the cluster bus too), in a scratch folder.
 */
class RedisCluster {
  static async start(n = 3) {
    const os = require('node:os');
    const fs = require('node:fs');
    const path = require('node:path');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chathub-redis-cluster-'));
    const nodes = [];
    const buses = [];
    for (let i = 0; i < n; i++) {
      const bus = await freePort();
      nodes.push(await RedisServer.start(undefined, [
        '--cluster-enabled', 'yes', '--cluster-port', String(bus),
        '--cluster-config-file', `nodes-${i}.conf`, '--cluster-node-timeout', '2000', '--dir', dir,
      ]));
      buses.push(bus);
    }
    const cluster = new RedisCluster(nodes, dir);
    for (const [i, node] of nodes.entries()) {
      const first = Math.floor((i * 16384) / n);
      const last = Math.floor(((i + 1) * 16384) / n) - 1;
      await command(node.port, ['CLUSTER', 'ADDSLOTSRANGE', first, last]);
    }
    for (let i = 1; i < n; i++) {
      await command(nodes[0].port, ['CLUSTER', 'MEET', '127.0.0.1', nodes[i].port, buses[i]]);
    }
    // Every node says ok and knows every other (bounded: 30 s).
    const deadline = Date.now() + 30000;
    for (;;) {
      const infos = await Promise.all(nodes.map((node) => command(node.port, ['CLUSTER', 'INFO'])));
      if (infos.every((info) => info.includes('cluster_state:ok') && info.includes(`cluster_known_nodes:${n}`))) break;
      if (Date.now() > deadline) throw new Error('the Redis Cluster did not form');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return cluster;
  }

  constructor(nodes, dir) {
    this.nodes = nodes;
    this.dir = dir;
  }

  /** The seed URL (the first node). */
  get url() {
    return this.nodes[0].url;
  }

  /** `SPUBLISH` calls each node carried so far. */
  async spublishes() {
    return Promise.all(this.nodes.map(async (node) => {
      const stats = await command(node.port, ['INFO', 'commandstats']);
      const m = /cmdstat_spublish:calls=(\d+)/.exec(stats);
      return m ? Number(m[1]) : 0;
    }));
  }

  /** The index of the node that owns `key`'s hash slot. */
  async owner(key) {
    const slot = await command(this.nodes[0].port, ['CLUSTER', 'KEYSLOT', key]);
    return Math.floor((slot * this.nodes.length) / 16384);
  }

  /** Each node's count of subscribers of the sharded channel `channel`. */
  async shardSubscribers(channel) {
    return Promise.all(this.nodes.map(async (node) => {
      const [, n] = await command(node.port, ['PUBSUB', 'SHARDNUMSUB', channel]);
      return n;
    }));
  }

  async stop() {
    await Promise.all(this.nodes.map((node) => node.stop()));
    require('node:fs').rmSync(this.dir, { recursive: true, force: true });
  }
}

module.exports = { RedisServer, RedisCluster, command };
