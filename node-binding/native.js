'use strict';
// Loads chathub's native addon through the loader napi-rs generates
// (index.js). That loader picks `chathub.<platform>.node` beside it (a build
// from source) or the package `chathub-<platform>` (an optional dependency,
// one per prebuilt platform). When neither loads, the error thrown here says
// which platform this is, which ones have prebuilt binaries and what to do,
// instead of the generated loader's generic advice.

const path = require('node:path');
const pkg = require('./package.json');
const { platformName } = require('./build-from-source.js');

const PREFIX = `${pkg.name}-`;

/** The platforms with a prebuilt package (the optional dependencies). */
function prebuiltPlatforms() {
  return Object.keys(pkg.optionalDependencies || {})
    .filter((name) => name.startsWith(PREFIX))
    .map((name) => name.slice(PREFIX.length));
}

/** Messages of the generated loader's error and its causes, innermost last. */
function causes(err) {
  const out = [];
  for (let e = err; e && out.length < 32; e = e.cause) out.push(String(e.message ?? e));
  return out;
}

function noBinaryError(loaderError) {
  const platform = platformName();
  const prebuilt = prebuiltPlatforms();
  const buildScript = path.join(__dirname, 'build-from-source.js');
  const fromSource =
    'build it from source (needs Rust with cargo, and a C linker, on PATH): ' +
    `node ${JSON.stringify(buildScript)} ` +
    `(it puts chathub.${platform}.node beside this loader), ` +
    'or set NAPI_RS_NATIVE_LIBRARY_PATH to a chathub .node built for this machine';
  // Messages other than "Cannot find module" are binaries that were there
  // and did not load (a newer glibc needed, a foreign architecture, …).
  const failures = causes(loaderError.cause).filter((m) => !m.startsWith('Cannot find module'));
  let what;
  if (!prebuilt.includes(platform)) {
    what =
      `no prebuilt binary for ${platform} (Node ${process.version}); ` +
      `prebuilt: ${prebuilt.join(', ') || 'none'}; ${fromSource}`;
  } else if (failures.length > 0) {
    what =
      `the binary for ${platform} is there but did not load: ${failures.join('; ')}; ` +
      `reinstall ${PREFIX}${platform}@${pkg.version}, or ${fromSource}`;
  } else {
    what =
      `the package ${PREFIX}${platform}@${pkg.version}, which holds the binary for ${platform}, ` +
      'is not installed. It is an optional dependency: installs with --omit=optional (or --no-optional) ' +
      'leave it out, and so can a package-lock.json written on another platform. ' +
      `Install it (npm install ${PREFIX}${platform}@${pkg.version}), or ${fromSource}`;
  }
  const error = new Error(`chathub: ${what}`);
  error.code = 'ERR_CHATHUB_NO_BINARY';
  error.platform = platform;
  error.cause = loaderError;
  return error;
}

try {
  module.exports = require('./index.js');
} catch (err) {
  // The generated loader's "found nothing that loads" error; anything else
  // (an error thrown while the addon initialises) goes on as it is.
  if (!(err instanceof Error) || !/^Cannot find native binding/.test(err.message)) throw err;
  throw noBinaryError(err);
}
