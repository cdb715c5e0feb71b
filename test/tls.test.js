'use strict';

// TLS to FerretDB with a certificate made here by the openssl CLI, and the
// OpenSSL that libmongoc binds to once loaded with RTLD_DEEPBIND.
const { execFileSync, spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { AssetRepository } = require('..');
const { startFerretDB } = require('../scripts/ferretdb');
const { ownFrontEnd } = require('./support/backend');
const { range } = require('./support/db');

const maybe = require('./support/needs').needs('openssl').describe;

function makeCa(dir, name) {
  const key = path.join(dir, `${name}.key`);
  const cert = path.join(dir, `${name}.pem`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${name}`, '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { key, cert };
}

function makeServerCert(dir, ca) {
  const key = path.join(dir, 'server.key');
  const csr = path.join(dir, 'server.csr');
  const cert = path.join(dir, 'server.pem');
  const ext = path.join(dir, 'server.ext');
  fs.writeFileSync(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  execFileSync('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', key, '-out', csr], { stdio: 'ignore' });
  execFileSync('openssl', ['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-days', '2', '-extfile', ext, '-out', cert], { stdio: 'ignore' });
  return { key, cert };
}

maybe('TLS', () => {
  let dir;
  let server;
  let ca;
  let otherCa;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-'));
    ca = makeCa(dir, 'test-ca');
    otherCa = makeCa(dir, 'wrong-ca');
    server = await startFerretDB({ ...ownFrontEnd('tls'), tls: makeServerCert(dir, ca) });
  });
  afterAll(async () => {
    if (server) await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('tls=true with the right CA: uploads work, gapless', async () => {
    const repo = new AssetRepository({ uri: `mongodb://127.0.0.1:${server.tlsPort}/tlsdb?tls=true&tlsCAFile=${encodeURIComponent(ca.cert)}`, collection: 'a' });
    try {
      const assets = await Promise.all(range(20).map((i) => repo.createWithAtomicVersion({ orderId: 'tls', fileName: `f${i}` })));
      expect(assets.map((a) => a.version).sort((x, y) => x - y)).toEqual(range(20));
    } finally {
      await repo.close();
    }
  });

  test('a wrong CA fails with a clear ConnectionError, not a crash', async () => {
    const repo = new AssetRepository({
      uri: `mongodb://127.0.0.1:${server.tlsPort}/tlsdb?tls=true&tlsCAFile=${encodeURIComponent(otherCa.cert)}&serverSelectionTimeoutMS=1500`,
      collection: 'a',
    });
    try {
      const err = await repo.createWithAtomicVersion({ orderId: 'tls', fileName: 'x' }).then(
        () => null,
        (e) => e,
      );
      expect(err).toMatchObject({ name: 'ConnectionError', code: 'ERR_ASSET_CONNECTION' });
      expect(err.message).toMatch(/TLS|SSL|certificate|handshake/i);
    } finally {
      await repo.close();
    }
  });
});

function mongocOpensslBindings(env) {
  const script = `require(${JSON.stringify(path.join(__dirname, '..', 'lib', 'native.js'))})`;
  // Only the source build links a shared libmongoc and the system OpenSSL: the
  // prebuild carries its own (test/prebuild.test.js checks that side).
  const childEnv = { ...process.env, ...env, ATOMIC_ASSET_VERSION_BUILD_FROM_SOURCE: '1', LD_DEBUG: 'bindings' };
  const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', maxBuffer: 512 * 1024 * 1024, env: childEnv });
  return run.stderr.split('\n').filter((l) => /binding file \S*libmongoc-1\.0\.so\S* .* symbol `(SSL|X509|EVP)_/.test(l));
}

(os.constants.dlopen.RTLD_DEEPBIND === undefined ? test.skip : test)('libmongoc binds to the system OpenSSL, not to the copy inside Node', () => {
  const deep = mongocOpensslBindings({});
  expect(deep.length).toBeGreaterThan(0);
  for (const line of deep) expect(line).toMatch(/ to \S*lib(ssl|crypto)\.so/);
  // Loaded plainly, the same symbols go to Node's own copy: what the flag prevents.
  const plain = mongocOpensslBindings({ ATOMIC_ASSET_VERSION_NO_DEEPBIND: '1' });
  expect(plain.some((line) => / to \S*node /.test(line))).toBe(true);
});

test('loading the addon leaves no shared-memory counters file behind', () => {
  // libmongoc's constructor would create /dev/shm/mongoc-<pid> and never remove it.
  const script = `require(${JSON.stringify(path.join(__dirname, '..', 'lib', 'native.js'))});
    console.log(require('fs').existsSync('/dev/shm/mongoc-' + process.pid))`;
  const env = { ...process.env };
  delete env.MONGOC_DISABLE_SHM;
  const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env });
  expect(run.stderr).toBe('');
  expect(run.stdout.trim()).toBe('false');
});
