'use strict';

// The prebuilt addon (scripts/build-prebuild.sh; docs/prebuilt.md): what it
// links and exports, its glibc floor, which binary the loader picks and when
// it falls back to the source build, the packed tarball installed and used by
// a project on a PATH with no compiler, and TLS with the system's CA bundle
// found by the addon's own OpenSSL. Skipped until `npm run build:prebuild`
// (CI: `npm run test:prebuild`).
const { execFileSync, spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { startFerretDB } = require('../scripts/ferretdb');
const { ownFrontEnd } = require('./support/backend');
const { testDatabase } = require('./support/db');

const root = path.join(__dirname, '..');
const dir = path.join(root, 'prebuilds', 'linux-x64');
const prebuilt = path.join(dir, 'atomic_asset_version.glibc.node');
const sourceBuild = path.join(root, 'build', 'Release', 'atomic_asset_version.node');
const { version } = require('../package.json');
const MAX_TARBALL = 3 * 1024 * 1024;

// AAV_REQUIRE_PREBUILD (scripts/test-prebuild.sh): a missing prebuild fails, not skips.
const have = fs.existsSync(prebuilt) || process.env.AAV_REQUIRE_PREBUILD === '1';
const maybe = have ? describe : describe.skip;

// Mount namespaces let a child see another distribution's CA layout, or no
// libmongoc at all, without touching the machine's files. Root only.
const canUnshare = spawnSync('unshare', ['--mount', '--propagation', 'private', 'true']).status === 0;
const withMounts = require('./support/needs').needs('root', canUnshare || 'unshare --mount failed').test;

function sh(args) {
  return execFileSync(args[0], args.slice(1), { encoding: 'utf8' });
}

/**
 * Runs `node -e script` after `setup` (shell, with the system's tools), in a
 * private mount namespace unless told not to. The child gets env.PATH.
 */
function nodeInNamespace(setup, script, env, isolate = true) {
  const quoted = `'${script.replace(/'/g, `'\\''`)}'`;
  const shell = ['/bin/sh', '-ec', `${setup}\nexport PATH="$CHILD_PATH"\nexec "${process.execPath}" -e ${quoted}`];
  const [cmd, ...args] = isolate ? ['unshare', '--mount', '--propagation', 'private', ...shell] : shell;
  return spawnSync(cmd, args, { encoding: 'utf8', env: { ...env, CHILD_PATH: env.PATH, PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
}

function envWithout(...names) {
  const env = { ...process.env };
  for (const n of names) delete env[n];
  return env;
}

/** Loads lib/native.js in a child; what it reports about the binding. */
function bindingIn(libDir, env = {}) {
  const run = spawnSync(process.execPath, ['-p', `JSON.stringify(require(${JSON.stringify(path.join(libDir, 'native.js'))}).binding)`], {
    encoding: 'utf8',
    env: { ...envWithout('ATOMIC_ASSET_VERSION_BUILD_FROM_SOURCE'), ...env },
  });
  expect(run.stderr).toBe('');
  return JSON.parse(run.stdout);
}

/** A copy of lib/'s loader beside a prebuilds/ of the caller's making and the real source build. */
function fakePackage(makePrebuild) {
  const pkg = fs.mkdtempSync(path.join(os.tmpdir(), 'aav-loader-'));
  fs.mkdirSync(path.join(pkg, 'lib'));
  // native.js hands errors.js's classes to the addon at load; errors.js needs bson.
  for (const f of ['native.js', 'prebuild.js', 'errors.js']) fs.copyFileSync(path.join(root, 'lib', f), path.join(pkg, 'lib', f));
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(pkg, 'node_modules'));
  fs.mkdirSync(path.join(pkg, 'build', 'Release'), { recursive: true });
  fs.symlinkSync(sourceBuild, path.join(pkg, 'build', 'Release', 'atomic_asset_version.node'));
  fs.mkdirSync(path.join(pkg, 'prebuilds', 'linux-x64'), { recursive: true });
  makePrebuild(path.join(pkg, 'prebuilds', 'linux-x64'));
  return pkg;
}

maybe('the prebuilt addon, as built', () => {
  test('links nothing but libc, libresolv and the dynamic loader: no libmongoc, libbson or OpenSSL', () => {
    const libs = sh(['ldd', prebuilt])
      .split('\n')
      .map((l) => l.trim().split(/\s+/)[0])
      .filter(Boolean)
      .map((l) => path.basename(l));
    expect(libs.sort()).toEqual(['ld-linux-x86-64.so.2', 'libc.so.6', 'libresolv.so.2', 'linux-vdso.so.1']);
  });

  test('exports only the Node-API entry points, so nothing binds to the OpenSSL inside Node', () => {
    const defined = sh(['nm', '-D', '--defined-only', prebuilt])
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(/\s+/).pop());
    expect(defined.sort()).toEqual(['napi_register_module_v1', 'node_api_module_get_api_version_v1']);
    // And what it takes from outside is Node-API and the C library, not OpenSSL.
    const undefinedSyms = sh(['nm', '-D', '--undefined-only', prebuilt]);
    expect(undefinedSyms).not.toMatch(/\b(SSL|EVP|X509|mongoc|bson)_/);
  });

  test('its glibc floor is the newest glibc symbol version it needs, as its description says', () => {
    const versions = [...new Set(sh(['objdump', '-T', prebuilt]).match(/GLIBC_[0-9.]+/g))].map((v) => v.slice(6));
    const newest = versions.sort((a, b) => a.localeCompare(b, undefined, { numeric: true })).pop();
    const info = JSON.parse(fs.readFileSync(path.join(dir, 'atomic_asset_version.glibc.json'), 'utf8'));
    expect(info.glibcFloor).toBe(newest);
    console.log(`prebuild: glibc floor ${newest}, ${fs.statSync(prebuilt).size} bytes, mongo-c-driver ${info.mongoCDriver}, OpenSSL ${info.openssl}`);
  });

  test('the package carries the licence notices of mongo-c-driver and OpenSSL', () => {
    const notices = fs.readFileSync(path.join(dir, 'THIRD-PARTY-NOTICES.txt'), 'utf8');
    expect(notices).toMatch(/==== mongo-c-driver: COPYING ====[\s\S]*Apache License/);
    expect(notices).toMatch(/==== OpenSSL: [\s\S]*OpenSSL/);
  });
});

maybe('which binary the loader picks', () => {
  test('the prebuild when it fits; the source build when ATOMIC_ASSET_VERSION_BUILD_FROM_SOURCE=1', () => {
    expect(bindingIn(path.join(root, 'lib'))).toMatchObject({ kind: 'prebuilt', file: prebuilt });
    expect(bindingIn(path.join(root, 'lib'), { ATOMIC_ASSET_VERSION_BUILD_FROM_SOURCE: '1' })).toMatchObject({
      kind: 'source',
      file: sourceBuild,
      prebuildPassedOver: 'ATOMIC_ASSET_VERSION_BUILD_FROM_SOURCE is set',
    });
  });

  test('a prebuild that does not load is passed over for the source build, saying why', () => {
    const pkg = fakePackage((d) => fs.writeFileSync(path.join(d, 'atomic_asset_version.glibc.node'), 'not an ELF file'));
    try {
      const b = bindingIn(path.join(pkg, 'lib'));
      expect(b.kind).toBe('source');
      expect(b.prebuildPassedOver).toMatch(/^the prebuilt binary did not load: .*(invalid ELF|too short|file too short)/);
    } finally {
      fs.rmSync(pkg, { recursive: true, force: true });
    }
  });

  test('a prebuild that needs a newer glibc than this one is not even tried', () => {
    const pkg = fakePackage((d) => {
      fs.copyFileSync(prebuilt, path.join(d, 'atomic_asset_version.glibc.node'));
      fs.writeFileSync(path.join(d, 'atomic_asset_version.glibc.json'), JSON.stringify({ glibcFloor: '99.1' }));
    });
    try {
      const b = bindingIn(path.join(pkg, 'lib'));
      expect(b.kind).toBe('source');
      expect(b.prebuildPassedOver).toMatch(/^the prebuilt binary needs glibc 99\.1; this system has 2\.\d+$/);
    } finally {
      fs.rmSync(pkg, { recursive: true, force: true });
    }
  });

  test('with neither, the error says why each one failed and how to build', () => {
    const pkg = fakePackage(() => {});
    fs.unlinkSync(path.join(pkg, 'build', 'Release', 'atomic_asset_version.node'));
    try {
      const run = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(path.join(pkg, 'lib', 'native.js'))})`], { encoding: 'utf8' });
      expect(run.status).toBe(1);
      expect(run.stderr).toMatch(/no usable native addon: no prebuilt binary for linux-x64 \(glibc\), and the source build .* did not load/);
      expect(run.stderr).toContain('npm rebuild atomic-asset-version');
    } finally {
      fs.rmSync(pkg, { recursive: true, force: true });
    }
  });
});

// Under `npm test` the environment describes this repository: the consumer's
// npm must not see that (as in test/pack-install.test.js).
const THIS_PROJECT = /^(?:npm_package_|npm_lifecycle_|npm_command$|npm_execpath$|npm_node_execpath$|npm_config_(?:local_|global_)?prefix$|INIT_CWD$)/i;

maybe('the packed tarball in a project on a machine with no compiler', () => {
  let consumer;
  let t;
  beforeAll(async () => {
    consumer = fs.mkdtempSync(path.join(os.tmpdir(), 'aav-prebuilt-consumer-'));
    t = await testDatabase(__filename);
  });
  afterAll(async () => {
    if (t) await t.done();
    if (consumer) fs.rmSync(consumer, { recursive: true, force: true });
  });

  test('installs with only node and npm on PATH, compiles nothing, and stores an upload without libmongoc', () => {
    // PATH: a directory holding node, npm and sh (through which npm runs a
    // package's scripts), nothing else: what a node:*-slim image offers.
    const bin = path.join(consumer, 'bin');
    fs.mkdirSync(bin);
    fs.symlinkSync(process.execPath, path.join(bin, 'node'));
    fs.symlinkSync(fs.realpathSync('/bin/sh'), path.join(bin, 'sh'));
    const npmCli = fs.realpathSync(execFileSync('/bin/sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim());
    fs.symlinkSync(npmCli, path.join(bin, 'npm'));
    const env = { HOME: process.env.HOME, PATH: bin };
    for (const [k, v] of Object.entries(process.env)) if (/^npm_config_/i.test(k) && !THIS_PROJECT.test(k)) env[k] = v;
    for (const tool of ['cc', 'gcc', 'c++', 'make', 'python3', 'python', 'pkg-config', 'cmake']) {
      expect(spawnSync('/bin/sh', ['-c', `command -v ${tool}`], { env }).status).not.toBe(0);
    }

    const pack = spawnSync('npm', ['pack', '--silent', '--pack-destination', consumer], { cwd: root, encoding: 'utf8' });
    expect(pack.status).toBe(0);
    const tarball = path.join(consumer, `atomic-asset-version-${version}.tgz`);
    const size = fs.statSync(tarball).size;
    console.log(`prebuild: tarball ${(size / 1024 / 1024).toFixed(2)} MB (${size} bytes)`);
    expect(size).toBeLessThan(MAX_TARBALL);
    const listing = spawnSync('tar', ['tzf', tarball], { encoding: 'utf8' }).stdout;
    expect(listing).toContain('package/prebuilds/linux-x64/atomic_asset_version.glibc.node');
    expect(listing).toContain('package/prebuilds/linux-x64/THIRD-PARTY-NOTICES.txt');

    fs.writeFileSync(path.join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
    const started = Date.now();
    const install = spawnSync(path.join(bin, 'npm'), ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], { cwd: consumer, env, encoding: 'utf8' });
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    if (install.status !== 0) console.error(install.stdout, install.stderr);
    expect(install.status).toBe(0);
    console.log(`prebuild: npm install of the tarball with no compiler took ${seconds} s`);
    const installed = path.join(consumer, 'node_modules', 'atomic-asset-version');
    expect(fs.existsSync(path.join(installed, 'build'))).toBe(false);

    // The upload, in a namespace where the system's libmongoc and libbson are
    // unreadable (when one can be made), with the prebuild loaded.
    const upload = `
      const { AssetRepository } = require('atomic-asset-version');
      const native = require(${JSON.stringify(path.join(installed, 'lib', 'native.js'))});
      (async () => {
        const repo = new AssetRepository({ uri: process.env.MONGODB_URI, dbName: process.env.DB_NAME, collection: 'assets' });
        try {
          const a = await repo.createWithAtomicVersion({ orderId: 'order-1', fileName: 'invoice.pdf' });
          console.log(JSON.stringify({ id: a._id.toHexString(), version: a.version, kind: native.binding.kind }));
        } finally { await repo.close(); }
      })().catch((e) => { console.error(e); process.exitCode = 1; });`;
    const hide = 'for f in /usr/lib/*/libmongoc-1.0.so* /usr/lib/*/libbson-1.0.so*; do [ -e "$f" ] && [ ! -L "$f" ] && mount --bind /dev/null "$f"; done';
    const run = nodeInNamespace(
      canUnshare ? `${hide}\ncd "$CONSUMER"` : 'cd "$CONSUMER"',
      upload,
      { ...env, CONSUMER: consumer, MONGODB_URI: process.env.MONGODB_URI, DB_NAME: t.dbName },
      canUnshare,
    );
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const printed = JSON.parse(run.stdout.trim());
    expect(printed).toMatchObject({ version: 1, kind: 'prebuilt' });

    // And with no install script run at all (--ignore-scripts; npm's allowScripts
    // denying it; pnpm), the loader finds the prebuild just the same.
    const bare = path.join(consumer, 'no-scripts');
    fs.mkdirSync(bare);
    fs.writeFileSync(path.join(bare, 'package.json'), JSON.stringify({ name: 'bare', version: '1.0.0', private: true }));
    const quiet = spawnSync(path.join(bin, 'npm'), ['install', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts', tarball], { cwd: bare, env, encoding: 'utf8' });
    expect(quiet.status).toBe(0);
    const kind = spawnSync(process.execPath, ['-p', "require(require.resolve('atomic-asset-version').replace(/index\\.js$/, 'native.js')).binding.kind"], {
      cwd: bare,
      env,
      encoding: 'utf8',
    });
    expect(kind.stderr).toBe('');
    expect(kind.stdout.trim()).toBe('prebuilt');

    return t.db
      .collection('assets')
      .find({})
      .toArray()
      .then((docs) => {
        expect(docs.map((d) => [d._id.toHexString(), d.version])).toEqual([[printed.id, 1]]);
      });
  }, 180000);
});

function makeCa(tmp, name) {
  const key = path.join(tmp, `${name}.key`);
  const cert = path.join(tmp, `${name}.pem`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${name}`, '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { key, cert };
}

function makeServerCert(tmp, ca) {
  const key = path.join(tmp, 'server.key');
  const csr = path.join(tmp, 'server.csr');
  const cert = path.join(tmp, 'server.pem');
  const ext = path.join(tmp, 'server.ext');
  fs.writeFileSync(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  execFileSync('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', key, '-out', csr], { stdio: 'ignore' });
  execFileSync('openssl', ['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-days', '2', '-extfile', ext, '-out', cert], { stdio: 'ignore' });
  return { key, cert };
}

// The machine's own CA bundle cannot hold a test CA, so each case runs in a
// mount namespace showing another distribution's layout: an empty
// /usr/lib/ssl (Debian's OpenSSL default, which the prebuild's OpenSSL would
// otherwise read) and an /etc/ssl holding only the test CA, at one of the
// places the addon tries. SSL_CERT_FILE and SSL_CERT_DIR are unset.
maybe('TLS with the prebuild and no CA file named anywhere', () => {
  let tmp;
  let server;
  let ca;
  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-bundle-'));
    ca = makeCa(tmp, 'system-ca');
    server = await startFerretDB({ ...ownFrontEnd('tlsbundle'), tls: makeServerCert(tmp, ca) });
  });
  afterAll(async () => {
    if (server) await server.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  function uploadWithBundleAt(bundle, extraEnv = {}) {
    const setup = ['mount -t tmpfs none /usr/lib/ssl', 'mount -t tmpfs none /etc/ssl', `mkdir -p "$(dirname '${bundle}')"`, `cp "$CA" '${bundle}'`].join('\n');
    const script = `
      const { AssetRepository } = require(${JSON.stringify(path.join(root, 'lib', 'index.js'))});
      const native = require(${JSON.stringify(path.join(root, 'lib', 'native.js'))});
      (async () => {
        const repo = new AssetRepository({ uri: process.env.TLS_URI, collection: 'bundle' });
        try {
          const a = await repo.createWithAtomicVersion({ orderId: 'tls-bundle', fileName: 'f' });
          console.log(JSON.stringify({ ok: true, version: a.version, kind: native.binding.kind }));
        } catch (e) {
          console.log(JSON.stringify({ ok: false, name: e.name, message: e.message, kind: native.binding.kind }));
        } finally { await repo.close(); }
      })();`;
    const env = {
      ...envWithout('SSL_CERT_FILE', 'SSL_CERT_DIR', 'NODE_EXTRA_CA_CERTS', 'ATOMIC_ASSET_VERSION_BUILD_FROM_SOURCE'),
      CA: ca.cert,
      TLS_URI: `mongodb://127.0.0.1:${server.tlsPort}/tlsbundle?tls=true&serverSelectionTimeoutMS=2000`,
      ...extraEnv,
    };
    const run = nodeInNamespace(setup, script, env);
    expect(run.stderr).toBe('');
    return JSON.parse(run.stdout.trim());
  }

  withMounts.each(['/etc/ssl/certs/ca-certificates.crt', '/etc/ssl/ca-bundle.pem', '/etc/ssl/cert.pem'])('tls=true verifies against the system bundle at %s', (bundle) => {
    const r = uploadWithBundleAt(bundle);
    expect(r).toMatchObject({ ok: true, kind: 'prebuilt' });
    expect(r.version).toBeGreaterThanOrEqual(1);
  });

  withMounts('the same CA anywhere else is not found: the handshake fails, as it would have without the list', () => {
    const r = uploadWithBundleAt('/etc/ssl/private-ca/elsewhere.pem');
    expect(r).toMatchObject({ ok: false, name: 'ConnectionError', kind: 'prebuilt' });
    expect(r.message).toMatch(/TLS|SSL|certificate|handshake/i);
  });

  withMounts('SSL_CERT_FILE, when set, is what OpenSSL uses instead of the list', () => {
    const wrong = makeCa(tmp, 'wrong-ca');
    const r = uploadWithBundleAt('/etc/ssl/cert.pem', { SSL_CERT_FILE: wrong.cert });
    expect(r).toMatchObject({ ok: false, name: 'ConnectionError', kind: 'prebuilt' });
  });
});
