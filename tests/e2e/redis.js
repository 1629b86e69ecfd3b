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
  constructor(port, tls) {
    this.port = port;
    this.tls = tls;
    this.child = null;
  }

  static async start(tls) {
    for (let attempt = 0; attempt < 5; attempt++) {
      const server = new RedisServer(await freePort(), tls);
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
      '--save', '', '--appendonly', 'no', '--loglevel', 'notice',
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

module.exports = { RedisServer };
