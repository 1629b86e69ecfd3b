'use strict';
// The npm package as a user gets it: `npm pack` of node-binding and of the
// platform package for this machine (npm/<platform>/ with the addon the
// normal build made), both installed into a scratch project outside the
// repository, and from there a plain `http`, an Express and an `https`
// server, each with a hub attached, driven by socket.io-client: the login,
// a line that reaches another client, the client bundle from the package's
// own socket.io-client. Also: the loader's error when the platform package
// is missing, the Rust sources shipped for a build from source, and the
// platform packages lining up with package.json and the generated loader.
//
// scripts/node-packages.sh runs it for other platform packages:
// CHATHUB_PACKAGE_PLATFORM (e.g. linux-arm64-gnu), CHATHUB_PACKAGE_BINARY
// (the .node to pack) and CHATHUB_PACKAGE_NODE (the Node that runs the
// servers, e.g. an arm64 Node under qemu-user).

const test = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync, spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const https = require('node:https');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { ROOT, WAIT_MS, within, client } = require('./helpers');

const PKG_DIR = path.join(ROOT, 'node-binding');
const pkg = JSON.parse(fs.readFileSync(path.join(PKG_DIR, 'package.json'), 'utf8'));
const { platformName } = require(path.join(PKG_DIR, 'build-from-source.js'));
const PLATFORM = process.env.CHATHUB_PACKAGE_PLATFORM || platformName();
const BINARY = process.env.CHATHUB_PACKAGE_BINARY || path.join(PKG_DIR, `chathub.${PLATFORM}.node`);
const NODE = process.env.CHATHUB_PACKAGE_NODE || process.execPath;
const PLATFORM_DIR = path.join(PKG_DIR, 'npm', PLATFORM);
const PLATFORMS = Object.keys(pkg.optionalDependencies ?? {}).map((n) => n.slice(`${pkg.name}-`.length));

const skip = !fs.existsSync(PLATFORM_DIR)
  ? `no platform package for ${PLATFORM} (npm/${PLATFORM})`
  : !fs.existsSync(BINARY)
    ? `no addon at ${BINARY} (npm run build in node-binding)`
    : false;

// npm, quietly, never asking the user anything; the registry through the
// cache first (socket.io-client, express).
const NPM_ENV = {
  ...process.env,
  npm_config_loglevel: 'error',
  npm_config_fund: 'false',
  npm_config_audit: 'false',
  npm_config_update_notifier: 'false',
  npm_config_prefer_offline: 'true',
};
function npm(args, cwd) {
  return execFileSync('npm', args, { cwd, env: NPM_ENV, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
/** `npm pack --json` of `dir` into `dest`: { filename, files }. */
function pack(dir, dest) {
  const [info] = JSON.parse(npm(['pack', '--json', '--pack-destination', dest], dir));
  return { file: path.join(dest, info.filename), files: info.files.map((f) => f.path) };
}

/** Starts `script` on NODE from `cwd`; resolves once it prints its URL. */
async function startScript(script, cwd, env = {}) {
  const child = spawn(NODE, [script], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const lines = readline.createInterface({ input: child.stdout });
  const first = await within(
    Promise.race([
      new Promise((resolve) => lines.on('line', (line) => { if (/^listening on /.test(line)) resolve(line); })),
      exited.then((e) => { throw new Error(`${script} exited early (${JSON.stringify(e)}): ${stderr}`); }),
    ]),
    `${path.basename(script)} to listen`,
  );
  const [, url, bundle] = first.match(/^listening on (https?:\/\/[^/\s]+)\/ bundle (.*)$/);
  return {
    url,
    bundle,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const e = await within(exited, `${path.basename(script)} to exit`);
      assert.equal(e.code, 0, `${script} exit: ${JSON.stringify(e)} ${stderr}`);
    },
  };
}

/** GET over https, trusting `ca`: { status, body }. */
function httpsGet(url, ca) {
  return new Promise((resolve, reject) => {
    https.get(url, { ca }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    }).on('error', reject);
  });
}

// The servers, as a user would write them against the installed package.
const SERVERS = {
  'http-server.js': `
const http = require('node:http');
const { Hub } = require('chathub');
const server = http.createServer((req, res) => res.end('plain http'));
const hub = new Hub();
hub.attach(server);
server.listen(0, '127.0.0.1', () =>
  console.log('listening on http://127.0.0.1:' + server.address().port + '/ bundle ' + hub.clientBundle));
process.on('SIGTERM', () => hub.close().then(() => process.exit(0)));
`,
  'express-server.js': `
const express = require('express');
const { Hub } = require('chathub');
const app = express();
app.get('/', (req, res) => res.send('express'));
const hub = new Hub();
const server = app.listen(0, '127.0.0.1', () =>
  console.log('listening on http://127.0.0.1:' + server.address().port + '/ bundle ' + hub.clientBundle));
hub.attach(server);
process.on('SIGTERM', () => hub.close().then(() => process.exit(0)));
`,
  'https-server.js': `
const fs = require('node:fs');
const https = require('node:https');
const { Hub } = require('chathub');
const server = https.createServer({
  key: fs.readFileSync(process.env.TLS_KEY),
  cert: fs.readFileSync(process.env.TLS_CERT),
}, (req, res) => res.end('https'));
const hub = new Hub();
hub.attach(server);
server.listen(0, '127.0.0.1', () =>
  console.log('listening on https://127.0.0.1:' + server.address().port + '/ bundle ' + hub.clientBundle));
process.on('SIGTERM', () => hub.close().then(() => process.exit(0)));
`,
};

test(`the packed npm package, installed outside the repository (${PLATFORM})`, { skip }, async (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'chathub-package-'));
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const app = path.join(tmp, 'app');
  // The servers run from here: no node_modules in it or above, so the
  // client bundle can only come from the package's own dependency.
  const elsewhere = path.join(tmp, 'elsewhere');
  fs.mkdirSync(app);
  fs.mkdirSync(elsewhere);

  // The main package: JavaScript, types, the Rust sources; no binary.
  const main = pack(PKG_DIR, tmp);
  for (const f of ['package.json', 'hub.js', 'hub.d.ts', 'native.js', 'index.js', 'index.d.ts',
    'build-from-source.js', 'rust/Cargo.toml', 'rust/Cargo.lock', 'rust/core/src/lib.rs',
    'rust/core/assets/index.html', 'rust/node-binding/Cargo.toml', 'rust/node-binding/src/lib.rs']) {
    assert.ok(main.files.includes(f), `the package holds ${f} (it holds: ${main.files.join(', ')})`);
  }
  assert.deepEqual(main.files.filter((f) => f.endsWith('.node') || f.startsWith('rust/target/')), []);
  assert.ok(!fs.existsSync(path.join(PKG_DIR, 'rust')), 'postpack removed node-binding/rust/');

  // The platform package, with the addon at hand.
  const staged = path.join(tmp, PLATFORM);
  fs.cpSync(PLATFORM_DIR, staged, { recursive: true, filter: (f) => !f.endsWith('.node') });
  fs.copyFileSync(BINARY, path.join(staged, `chathub.${PLATFORM}.node`));
  const platformPkg = pack(staged, tmp);
  assert.deepEqual(platformPkg.files.sort(), ['README.md', `chathub.${PLATFORM}.node`, 'package.json']);

  // A user's project: both tarballs (as the registry would give them) and
  // Express. npm checks the platform package's os/cpu/libc against this
  // machine: for another one's package (run by an emulated Node) it is
  // told to go on.
  const manifest = JSON.parse(fs.readFileSync(path.join(staged, 'package.json'), 'utf8'));
  const foreign = !manifest.cpu.includes(process.arch);
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'chathub-user', version: '1.0.0', private: true }));
  const rootPkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  npm(['install', main.file, platformPkg.file, `express@${rootPkg.devDependencies.express}`,
    ...(foreign ? ['--force'] : [])], app);
  const modules = path.join(app, 'node_modules');
  assert.ok(fs.existsSync(path.join(modules, `chathub-${PLATFORM}`, `chathub.${PLATFORM}.node`)));
  for (const other of PLATFORMS.filter((p) => p !== PLATFORM)) {
    assert.ok(!fs.existsSync(path.join(modules, `chathub-${other}`)), `chathub-${other} is not installed`);
  }
  for (const [name, text] of Object.entries(SERVERS)) fs.writeFileSync(path.join(app, name), text);
  const bundleDir = path.join(modules, 'socket.io-client', 'dist');

  await t.test('a plain http server and an Express server carry the chat', async () => {
    for (const name of ['http-server.js', 'express-server.js']) {
      const server = await startScript(path.join(app, name), elsewhere);
      let ann;
      let bob;
      try {
        assert.equal(server.bundle, bundleDir, `${name}: the bundle of the package's socket.io-client`);
        const bundle = await fetch(`${server.url}/socket.io/socket.io.js`);
        assert.equal(bundle.status, 200);
        assert.match(await bundle.text(), /Socket\.IO v4/);
        ann = client(server.url, '/chat');
        await ann.login('ann');
        bob = client(server.url, '/chat');
        await bob.login('bob');
        await ann.expectLine('User bob Logged in');
        await bob.say(`hello from ${name}`);
        await ann.expectLine(`bob said: hello from ${name}`);
      } finally {
        ann?.close();
        bob?.close();
        await server.stop();
      }
    }
  });

  const openssl = spawnSync('openssl', ['version']).status === 0;
  await t.test('an https server carries the chat', { skip: !openssl && 'no openssl to make a certificate' }, async () => {
    const key = path.join(tmp, 'key.pem');
    const cert = path.join(tmp, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert,
      '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
    { stdio: 'ignore' });
    const ca = fs.readFileSync(cert);
    const server = await startScript(path.join(app, 'https-server.js'), elsewhere, { TLS_KEY: key, TLS_CERT: cert });
    let ann;
    let bob;
    try {
      assert.match(server.url, /^https:/);
      assert.equal(server.bundle, bundleDir);
      const bundle = await httpsGet(`${server.url}/socket.io/socket.io.js`, ca);
      assert.equal(bundle.status, 200);
      assert.match(bundle.body, /Socket\.IO v4/);
      // Long-polling first, then the upgrade to WebSocket, both over TLS.
      ann = client(server.url, '/chat', { ca });
      await ann.login('ann');
      bob = client(server.url, '/chat', { ca, transports: ['websocket'] });
      await bob.login('bob');
      await ann.expectLine('User bob Logged in');
      await bob.say('hello over tls');
      await ann.expectLine('bob said: hello over tls');
    } finally {
      ann?.close();
      bob?.close();
      await server.stop();
    }
  });

  await t.test('without its platform package, the loader says which platform and what to do', () => {
    const lonely = path.join(tmp, 'lonely', 'node_modules');
    fs.cpSync(path.join(modules, 'chathub'), path.join(lonely, 'chathub'), { recursive: true });
    const env = { ...process.env };
    delete env.NAPI_RS_NATIVE_LIBRARY_PATH;
    const run = spawnSync(NODE, ['-e', `
      try { require('chathub'); } catch (e) { console.log(JSON.stringify({ code: e.code, platform: e.platform, message: e.message })); }
    `], { cwd: path.dirname(lonely), env, encoding: 'utf8', timeout: WAIT_MS });
    assert.equal(run.status, 0, run.stderr);
    const err = JSON.parse(run.stdout);
    assert.equal(err.code, 'ERR_CHATHUB_NO_BINARY');
    assert.equal(err.platform, PLATFORM);
    assert.match(err.message, new RegExp(`^chathub: the package chathub-${PLATFORM}@${pkg.version}, which holds the binary for ${PLATFORM}, is not installed`));
    assert.match(err.message, new RegExp(`npm install chathub-${PLATFORM}@${pkg.version}`));
    assert.match(err.message, /build-from-source\.js/);
    assert.doesNotMatch(err.message, /npm has a bug/);
  });

  const cargo = spawnSync('cargo', ['--version']).status === 0;
  await t.test('the Rust sources in the package make a workspace cargo reads', { skip: !cargo && 'no cargo' }, () => {
    const meta = JSON.parse(execFileSync('cargo', ['metadata', '--no-deps', '--format-version', '1',
      '--manifest-path', path.join(modules, 'chathub', 'rust', 'Cargo.toml')], { encoding: 'utf8' }));
    assert.deepEqual(meta.packages.map((p) => p.name).sort(), ['chathub', 'chathub-node']);
    const addon = meta.packages.find((p) => p.name === 'chathub-node');
    assert.ok(addon.targets.some((x) => x.kind.includes('cdylib')), 'chathub-node builds a cdylib');
  });
});

test('the platform packages line up with package.json and the generated loader', () => {
  const { parseTriple } = require(path.join(PKG_DIR, 'node_modules', '@napi-rs', 'cli'));
  const fromTargets = pkg.napi.targets.map((t) => parseTriple(t).platformArchABI).sort();
  assert.deepEqual([...PLATFORMS].sort(), fromTargets, 'optionalDependencies are napi.targets');
  assert.deepEqual(fs.readdirSync(path.join(PKG_DIR, 'npm')).sort(), fromTargets, 'npm/ has a folder per target');
  const loader = fs.readFileSync(path.join(PKG_DIR, 'index.js'), 'utf8');
  for (const platform of PLATFORMS) {
    const m = JSON.parse(fs.readFileSync(path.join(PKG_DIR, 'npm', platform, 'package.json'), 'utf8'));
    assert.equal(m.name, `${pkg.name}-${platform}`);
    assert.equal(m.version, pkg.version, `npm/${platform} has the package's version (npm version runs napi version)`);
    assert.equal(pkg.optionalDependencies[m.name], pkg.version);
    assert.equal(m.main, `chathub.${platform}.node`);
    assert.deepEqual(m.files, [m.main]);
    assert.ok(loader.includes(`require('${m.name}')`), `index.js looks for ${m.name}`);
  }
});
