'use strict';
// Test certificates, made with the openssl command (scripts/setup.sh
// installs it): a CA of our own and server certificates it signs, for
// localhost and 127.0.0.1. Nothing here is trusted by the system.

const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

function openssl(args, cwd) {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * A fresh CA in a temporary folder. `ca.pem` is its certificate;
 * `issue(name)` writes `name.pem` and `name.key` (a P-256 server certificate
 * for localhost and 127.0.0.1) and returns their paths and contents.
 */
function makeCa() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chathub-certs-'));
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=chathub test CA'], dir);
  fs.writeFileSync(path.join(dir, 'server.ext'), [
    'subjectAltName=DNS:localhost,IP:127.0.0.1',
    'basicConstraints=CA:FALSE',
    'keyUsage=digitalSignature',
    'extendedKeyUsage=serverAuth',
    '',
  ].join('\n'));
  const ca = { dir, cert: path.join(dir, 'ca.pem') };
  ca.pem = fs.readFileSync(ca.cert);
  ca.issue = (name) => {
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`], dir);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key',
      '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', 'server.ext'], dir);
    const cert = path.join(dir, `${name}.pem`);
    const key = path.join(dir, `${name}.key`);
    const pem = fs.readFileSync(cert);
    return {
      cert,
      key,
      pem,
      keyPem: fs.readFileSync(key),
      /** SHA-256 fingerprint, as `tls` reports `fingerprint256`. */
      fingerprint: new crypto.X509Certificate(pem).fingerprint256,
      /** Base64 SHA-256 of the public key (Chromium's SPKI pin form). */
      spki: crypto.createHash('sha256')
        .update(new crypto.X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' }))
        .digest('base64'),
    };
  };
  ca.remove = () => fs.rmSync(dir, { recursive: true, force: true });
  return ca;
}

module.exports = { makeCa };
