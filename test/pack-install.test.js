'use strict';

// The package as a consumer gets it: `npm pack`, then `npm install` of the
// tarball in a project outside this repository (its install script builds
// the addon there, with the node-gyp npm hands it), a TypeScript file using
// it the way the upload service does compiled with tsc --strict against the
// shipped types, and one upload run against the test server.
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { testDatabase } = require('./support/db');

const root = path.join(__dirname, '..');
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const { version } = require('../package.json');

// The consumer's code, as the upload service writes it.
const UPLOAD_TS = `
import { AssetRepository } from 'atomic-asset-version';

async function main(): Promise<void> {
  const repository = new AssetRepository({ uri: process.env.MONGODB_URI, dbName: process.env.DB_NAME, collection: 'assets' });
  try {
    const asset = await repository.createWithAtomicVersion({
      orderId: 'order-1',
      fileName: 'invoice.pdf',
      mimeType: 'application/pdf',
      fileSize: 1234,
      uploadedBy: 'user-1',
    });
    const label: string = asset.versionLabel;
    const n: number = asset.version;
    console.log(JSON.stringify({ id: asset._id.toHexString(), version: n, label, loadedFrom: require.resolve('atomic-asset-version') }));
  } finally {
    await repository.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
`;

const TSCONFIG = {
  compilerOptions: {
    strict: true,
    target: 'ES2022',
    module: 'node16',
    moduleResolution: 'node16',
    outDir: 'dist',
    types: ['node'],
    skipLibCheck: false,
  },
  files: ['src/upload.ts'],
};

// Under `npm test` the environment describes this repository (its prefix,
// package and script): the consumer's npm must not see that. The user's npm
// settings (npm_config_cache, _registry, _nodedir...) stay.
const THIS_PROJECT = /^(?:npm_package_|npm_lifecycle_|npm_command$|npm_execpath$|npm_node_execpath$|npm_config_(?:local_|global_)?prefix$|INIT_CWD$)/i;

function consumerEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!THIS_PROJECT.test(k)) env[k] = v;
  return { ...env, ...extra };
}

function run(command, args, options) {
  const started = Date.now();
  const result = spawnSync(command, args, { encoding: 'utf8', ...options });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (result.status !== 0) console.error(`${command} ${args.join(' ')} (${seconds} s)\n${result.stdout}\n${result.stderr}`);
  return { ...result, seconds };
}

let consumer;
let t;

beforeAll(async () => {
  consumer = fs.mkdtempSync(path.join(os.tmpdir(), 'aav-consumer-'));
  t = await testDatabase(__filename);
});

afterAll(async () => {
  if (t) await t.done();
  if (consumer) fs.rmSync(consumer, { recursive: true, force: true });
});

test('packed and installed in a project outside the repository, it builds, type-checks under --strict and stores an upload', async () => {
  expect(path.relative(root, consumer).startsWith('..')).toBe(true);
  // The source build's path: the tarball carries the prebuild when one was
  // built here (test/prebuild.test.js covers that side), so skip it.
  const env = consumerEnv({ ATOMIC_ASSET_VERSION_BUILD_FROM_SOURCE: '1' });
  const timings = {};

  const pack = run('npm', ['pack', '--silent', '--pack-destination', consumer], { cwd: root, env });
  expect(pack.status).toBe(0);
  timings.pack = pack.seconds;
  const tarball = `atomic-asset-version-${version}.tgz`;
  expect(fs.existsSync(path.join(consumer, tarball))).toBe(true);

  fs.writeFileSync(path.join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
  // bson comes from npm's cache when it holds it (after `npm ci` it does).
  const install = run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', `./${tarball}`], { cwd: consumer, env });
  expect(install.status).toBe(0);
  timings.install = install.seconds;
  const installed = path.join(consumer, 'node_modules', 'atomic-asset-version');
  expect(fs.existsSync(path.join(installed, 'build', 'Release', 'atomic_asset_version.node'))).toBe(true);

  // The consumer's own dev dependencies, borrowed from this repository.
  fs.mkdirSync(path.join(consumer, 'node_modules', '@types'), { recursive: true });
  fs.symlinkSync(path.join(root, 'node_modules', '@types', 'node'), path.join(consumer, 'node_modules', '@types', 'node'), 'dir');
  fs.mkdirSync(path.join(consumer, 'src'));
  fs.writeFileSync(path.join(consumer, 'src', 'upload.ts'), UPLOAD_TS);
  fs.writeFileSync(path.join(consumer, 'tsconfig.json'), JSON.stringify(TSCONFIG));
  const compile = run(process.execPath, [tsc, '-p', consumer], { cwd: consumer, env });
  expect(compile.stdout + compile.stderr).toBe('');
  expect(compile.status).toBe(0);
  timings.tsc = compile.seconds;

  const upload = run(process.execPath, [path.join('dist', 'upload.js')], { cwd: consumer, env: { ...env, DB_NAME: t.dbName } });
  expect(upload.status).toBe(0);
  timings.upload = upload.seconds;
  const printed = JSON.parse(upload.stdout.trim());
  expect(printed.loadedFrom).toBe(path.join(fs.realpathSync(installed), 'lib', 'index.js'));
  console.log(`pack-install timings (s): ${JSON.stringify(timings)}`);

  const docs = await t.db.collection('assets').find({}).toArray();
  expect(docs).toHaveLength(1);
  expect(docs[0]._id.toHexString()).toBe(printed.id);
  expect(docs[0]).toMatchObject({
    orderId: 'order-1',
    fileName: 'invoice.pdf',
    mimeType: 'application/pdf',
    fileSize: 1234,
    uploadedBy: 'user-1',
    version: 1,
    versionLabel: 'v1',
  });
}, 180000);

// An app of today: Mongoose 9, the driver 7 and bson 7, the repository built
// at module load before mongoose.connect(), model mode and plain mode.
const APP_JS = `
const mongoose = require('mongoose');
const { ObjectId } = require('bson');
const { AssetRepository } = require('atomic-asset-version');

const Attachment = mongoose.model('Attachment', new mongoose.Schema({
  orderId: { type: String, required: true },
  fileName: { type: String, required: true },
  uploadedBy: String,
  version: { type: Number, required: true },
  versionLabel: { type: String, required: true },
}, { timestamps: true }), 'attachments');
const attachments = new AssetRepository({ model: Attachment });
const plain = new AssetRepository({ uri: process.env.MONGODB_URI, dbName: process.env.DB_NAME, collection: 'plain' });

async function main() {
  await mongoose.connect(process.env.MONGODB_URI, { dbName: process.env.DB_NAME, autoIndex: false });
  const saved = await Promise.all([1, 2, 3].map((i) => attachments.createWithAtomicVersion({ orderId: 'bug-1', fileName: i + '.png' })));
  const order = new ObjectId();
  const stored = await plain.createWithAtomicVersion({ orderId: order, fileName: 'x.pdf', by: new ObjectId() });
  console.log(JSON.stringify({ mongoose: mongoose.version, versions: saved.map((a) => a.version).sort(), plain: stored.version, order: order.toHexString() }));
  await Promise.all([attachments.close(), plain.close()]);
  await mongoose.disconnect();
}
main().catch((err) => { console.error(err); process.exitCode = 1; });
`;

const installedVersion = (name) => JSON.parse(fs.readFileSync(path.join(root, 'node_modules', name, 'package.json'), 'utf8')).version;

test('installed beside mongoose@9, mongodb@7 and bson@7 without --legacy-peer-deps, model mode built before connecting stores uploads', async () => {
  const app = fs.mkdtempSync(path.join(os.tmpdir(), 'aav-app9-'));
  try {
    const env = consumerEnv();
    const pack = run('npm', ['pack', '--silent', '--pack-destination', app], { cwd: root, env });
    expect(pack.status).toBe(0);
    // The versions this repository tested against, so npm's cache serves them.
    const dependencies = { mongoose: installedVersion('mongoose'), mongodb: installedVersion('mongodb'), bson: installedVersion('bson') };
    expect(dependencies.mongoose).toMatch(/^9\./);
    expect(dependencies.mongodb).toMatch(/^7\./);
    expect(dependencies.bson).toMatch(/^7\./);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, dependencies }));
    const install = run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', `./atomic-asset-version-${version}.tgz`], { cwd: app, env });
    expect(install.stderr).not.toMatch(/ERESOLVE|peer/i);
    expect(install.status).toBe(0);
    fs.writeFileSync(path.join(app, 'app.js'), APP_JS);
    const started = run(process.execPath, ['app.js'], { cwd: app, env: consumerEnv({ DB_NAME: t.dbName }) });
    expect(started.stderr).toBe('');
    expect(started.status).toBe(0);
    const printed = JSON.parse(started.stdout.trim());
    expect(printed).toMatchObject({ versions: [1, 2, 3], plain: 1 });
    expect(printed.mongoose).toBe(dependencies.mongoose);
    const attachments = await t.db.collection('attachments').find().sort({ version: 1 }).toArray();
    expect(attachments.map((a) => [a.version, a.versionLabel, a.__v])).toEqual([
      [1, 'v1', 0],
      [2, 'v2', 0],
      [3, 'v3', 0],
    ]);
    const plain = await t.db.collection('plain').findOne();
    expect(plain.orderId.toHexString()).toBe(printed.order);
  } finally {
    fs.rmSync(app, { recursive: true, force: true });
  }
}, 240000);

test('without libmongoc the install script fails with one line naming the packages to install', () => {
  // An empty pkg-config search path: libmongoc-1.0 is not found.
  const build = spawnSync(process.execPath, [path.join(root, 'scripts', 'build-addon.js')], {
    encoding: 'utf8',
    cwd: os.tmpdir(),
    env: consumerEnv({ PKG_CONFIG_LIBDIR: path.join(os.tmpdir(), 'aav-no-such-dir'), PKG_CONFIG_PATH: '' }),
  });
  expect(build.status).toBe(1);
  expect(build.stdout).toBe('');
  const lines = build.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  for (const name of ['libmongoc-dev', 'mongo-c-driver-dev', 'mongo-c-driver-devel', 'brew install mongo-c-driver@1']) {
    expect(lines[0]).toContain(name);
  }
});
