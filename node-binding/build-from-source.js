#!/usr/bin/env node
'use strict';
// Builds chathub's native addon for this machine from the Rust sources the
// package ships (rust/), for platforms without a prebuilt package, and puts
// it where the loader looks first: chathub.<platform>.node beside index.js.
//
//   node node_modules/chathub/build-from-source.js
//
// Needs cargo (Rust, see rust-version in rust/Cargo.toml) and a C linker;
// the crates come from crates.io; it takes minutes. CARGO_TARGET_DIR, when
// set, is used and kept; otherwise the build happens in rust/target, which
// is removed afterwards (it grows to about a gigabyte).

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const HERE = __dirname;
const SOURCES = path.join(HERE, 'rust');
const PROFILE = 'node';

/** The platform as napi-rs names its packages: `linux-x64-gnu`, `darwin-arm64`, … */
function platformName() {
  const { platform, arch } = process;
  if (platform === 'linux') {
    const libc = isMusl() ? 'musl' : 'gnu';
    return arch === 'arm' ? `linux-arm-${libc}eabihf` : `linux-${arch}-${libc}`;
  }
  if (platform === 'win32') return `win32-${arch}-msvc`;
  return `${platform}-${arch}`;
}

function isMusl() {
  try {
    return !process.report.getReport().header.glibcVersionRuntime;
  } catch {
    return false;
  }
}

/** What cargo names a cdylib of crate `name` on this platform. */
function cdylibName(name) {
  if (process.platform === 'win32') return `${name}.dll`;
  if (process.platform === 'darwin') return `lib${name}.dylib`;
  return `lib${name}.so`;
}

function main() {
  const fail = (msg) => {
    console.error(`chathub build-from-source: ${msg}`);
    process.exit(1);
  };
  const manifest = path.join(SOURCES, 'Cargo.toml');
  if (!fs.existsSync(manifest)) {
    fail(`no Rust sources at ${SOURCES} (this copy of the package was not packed with them)`);
  }
  const cargo = process.env.CARGO || 'cargo';
  const version = spawnSync(cargo, ['--version'], { encoding: 'utf8' });
  if (version.status !== 0) {
    fail(`cannot run ${cargo} (${version.error?.message ?? version.stderr.trim()}): install Rust (rustup) and retry`);
  }

  const platform = platformName();
  const keepTarget = Boolean(process.env.CARGO_TARGET_DIR);
  const targetDir = process.env.CARGO_TARGET_DIR || path.join(SOURCES, 'target');
  const env = { ...process.env };
  // A Node addon links against the C library dynamically, like Node itself.
  if (platform.includes('musl')) {
    env.RUSTFLAGS = `${env.RUSTFLAGS ?? ''} -C target-feature=-crt-static`.trim();
  }
  console.error(`chathub: building the addon for ${platform} with ${version.stdout.trim()} (this takes minutes)`);
  const build = spawnSync(
    cargo,
    ['build', '--profile', PROFILE, '-p', 'chathub-node', '--manifest-path', manifest, '--target-dir', targetDir],
    { stdio: 'inherit', env },
  );
  if (build.status !== 0) fail(`cargo build failed (exit ${build.status ?? build.signal})`);

  const built = path.join(targetDir, PROFILE, cdylibName('chathub_node'));
  const dest = path.join(HERE, `chathub.${platform}.node`);
  fs.copyFileSync(built, dest);
  if (!keepTarget) fs.rmSync(targetDir, { recursive: true, force: true });
  try {
    require(dest);
  } catch (e) {
    fail(`built ${dest} but it does not load: ${e.message}`);
  }
  console.error(`chathub: built ${dest}; the package loads it from now on`);
}

module.exports = { platformName };

if (require.main === module) main();
