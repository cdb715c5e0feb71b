'use strict';

// Starts a throwaway PostgreSQL for FerretDB's postgresql handler: Debian's
// server binaries, a cluster of its own (data and unix socket in one
// directory), listening on 127.0.0.1 only, on a free port, trust auth on
// loopback. initdb and postgres refuse to run as root, so as root they run
// as the `postgres` user the Debian package creates. `scripts/setup.sh`
// installs the package unless AAV_BACKEND=sqlite. Every database of the
// cluster gets scripts/order-index.sql (an index serving FerretDB's read of
// one order, on every versioned collection, whoever creates it).
const { spawn, execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { freePort } = require('./ports');

/** The newest installed server's bin directory (/usr/lib/postgresql/N/bin), or PG_BIN. */
function binDir() {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  const base = '/usr/lib/postgresql';
  const versions = fs.existsSync(base)
    ? fs
        .readdirSync(base)
        .filter((v) => fs.existsSync(path.join(base, v, 'bin', 'postgres')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0) {
    throw new Error('PostgreSQL server not found under /usr/lib/postgresql; run `bash scripts/setup.sh` (Debian: apt-get install -y postgresql) or set PG_BIN');
  }
  return path.join(base, versions[0], 'bin');
}

/** uid/gid to run the server as: `postgres` when we are root, else ourselves. */
function serverUser() {
  if (process.getuid() !== 0) return {};
  const id = (flag) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

function chownTree(dir, user) {
  if (user.uid === undefined) return;
  fs.chownSync(dir, user.uid, user.gid);
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) chownTree(p, user);
    else fs.chownSync(p, user.uid, user.gid);
  }
}

/**
 * @param {object} [opts]
 * @param {string} [opts.dataDir] the cluster's directory, kept (and reused) when given; default a temp dir removed on stop
 * @param {number} [opts.port] default: a free one
 * @param {string} [opts.database] created if missing (default `ferretdb`)
 * @returns {Promise<{ url: string, port: number, dataDir: string, pid: number, stop(): Promise<void> }>}
 */
async function startPostgres(opts = {}) {
  const bin = binDir();
  const user = serverUser();
  const ownDir = !opts.dataDir;
  const dataDir = path.resolve(opts.dataDir || fs.mkdtempSync(path.join(os.tmpdir(), 'aav-pg-')));
  const database = opts.database || 'ferretdb';
  fs.mkdirSync(dataDir, { recursive: true });
  // mkdtemp makes it 0700: the server user must be able to enter it.
  if (ownDir) chownTree(dataDir, user);
  // The cluster (and its unix socket) is one level down, in the directory
  // PostgreSQL insists on owning with mode 0700.
  const cluster = path.join(dataDir, 'cluster');
  const asServer = { ...user, env: { ...process.env, LC_ALL: 'C' } };
  if (!fs.existsSync(path.join(cluster, 'PG_VERSION'))) {
    fs.mkdirSync(cluster, { recursive: true, mode: 0o700 });
    chownTree(cluster, user);
    execFileSync(path.join(bin, 'initdb'), ['-D', cluster, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync'], {
      ...asServer,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
  }
  const port = opts.port || (await freePort());
  const args = [
    '-D',
    cluster,
    '-p',
    String(port),
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    `unix_socket_directories=${cluster}`,
    // Each FerretDB front end keeps a pool of connections; several front ends
    // and the test processes behind them go past the default of 100.
    '-c',
    'max_connections=300',
  ];
  const child = spawn(path.join(bin, 'postgres'), args, { ...asServer, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  let spawnError = null;
  child.on('error', (err) => {
    spawnError = err;
  });
  const ready = new Promise((resolve) => {
    child.stderr.on('data', (d) => {
      log += d;
      if (/database system is ready to accept connections/.test(log)) resolve();
    });
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  let timer;
  const late = new Promise((resolve) => {
    timer = setTimeout(resolve, 30000);
  });
  await Promise.race([ready, exited, late]);
  clearTimeout(timer);
  if (!/ready to accept connections/.test(log)) {
    child.kill('SIGKILL');
    if (ownDir) fs.rmSync(dataDir, { recursive: true, force: true });
    throw new Error(`postgres did not start on 127.0.0.1:${port}: ${spawnError ? spawnError.message : log}`);
  }
  const psql = (sql, db = 'postgres') =>
    execFileSync(path.join(bin, 'psql'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', db, '-tA', '-q', '-v', 'ON_ERROR_STOP=1', '-c', sql], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    }).trim();
  // template1 first: the databases created from it later inherit it.
  const orderIndex = fs.readFileSync(path.join(__dirname, 'order-index.sql'), 'utf8');
  psql(orderIndex, 'template1');
  if (psql(`SELECT 1 FROM pg_database WHERE datname = '${database}'`) !== '1') psql(`CREATE DATABASE "${database}"`);
  else psql(orderIndex, database); // a kept cluster's, maybe made before it

  return {
    url: `postgres://postgres@127.0.0.1:${port}/${database}`,
    port,
    dataDir,
    pid: child.pid,
    process: child,
    log: () => log,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        // SIGINT is PostgreSQL's "fast" shutdown: it disconnects clients
        // instead of waiting for them, as SIGTERM ("smart") would.
        child.kill('SIGINT');
        let t;
        await Promise.race([exited, new Promise((r) => (t = setTimeout(r, 10000)))]);
        clearTimeout(t);
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGKILL');
          await exited;
        }
      }
      if (ownDir) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * A new, empty database on the cluster `url` names; returns its URL. For a
 * FerretDB front end that must not share another's catalogue: a front end
 * loads every database of its PostgreSQL database when it first needs one,
 * and fails if another front end drops one meanwhile.
 */
function createDatabase(url, name) {
  const { hostname, port, username } = new URL(url);
  execFileSync(
    path.join(binDir(), 'psql'),
    ['-h', hostname, '-p', port, '-U', username || 'postgres', '-d', 'postgres', '-v', 'ON_ERROR_STOP=1', '-c', `CREATE DATABASE "${name}"`],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const own = new URL(url);
  own.pathname = `/${name}`;
  return own.toString();
}

module.exports = { startPostgres, createDatabase, binDir };

if (require.main === module) {
  startPostgres().then((pg) => {
    console.log(`PostgreSQL listening: ${pg.url}  (Ctrl-C stops it and removes its data)`);
    const stop = () => pg.stop().then(() => process.exit(0));
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
