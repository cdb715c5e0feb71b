'use strict';

// Starts a throwaway FerretDB (loopback, telemetry off) and stops it. Used
// by the Jest global setup, the demo, the benchmark and the service when
// MONGODB_URI is not set. Its backend is PostgreSQL (scripts/postgres.js) by
// default, or SQLite with `backend: 'sqlite'` or AAV_BACKEND=sqlite (nothing
// to install, but every read of an order scans its whole collection:
// docs/scale.md).
// As a command: `node scripts/ferretdb.js` runs one in the foreground and
// prints its URI.
const { spawn, execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { freePort, canConnect } = require('./ports');
const { startPostgres } = require('./postgres');

const ROOT = path.join(__dirname, '..');
const BACKENDS = ['sqlite', 'postgresql'];

/**
 * The URL FerretDB gets: with plan_cache_mode=force_custom_plan. FerretDB
 * prepares its statements with the field name as a parameter
 * (`_jsonb->$1 @> $2`); a generic plan cannot match the expression index
 * scripts/order-index.sql makes, and PostgreSQL switches to one after five
 * executions (an order's read stayed a full scan with the index there).
 */
function customPlansUrl(url) {
  const u = new URL(url);
  u.searchParams.set('plan_cache_mode', 'force_custom_plan');
  return u.toString();
}

function binaryPath() {
  return execFileSync('bash', [path.join(__dirname, 'build-ferretdb.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
}

/**
 * The backend a server started without one is on: PostgreSQL when a URL
 * is given or a test run shares one cluster (AAV_POSTGRESQL_URL, set by
 * the Jest global setup), else AAV_BACKEND, else PostgreSQL.
 */
function defaultBackend() {
  if (process.env.AAV_POSTGRESQL_URL) return 'postgresql';
  const backend = process.env.AAV_BACKEND || 'postgresql';
  if (!BACKENDS.includes(backend)) throw new Error(`AAV_BACKEND must be one of ${BACKENDS.join(', ')}, not "${backend}"`);
  return backend;
}

/**
 * @param {object} [opts]
 * @param {'sqlite'|'postgresql'} [opts.backend] default: defaultBackend()
 * @param {string} [opts.postgresqlUrl] PostgreSQL to serve (default AAV_POSTGRESQL_URL, else
 *   a cluster of its own, stopped with this server); several front ends may share one
 * @param {string} [opts.dataDir] where SQLite files, or this server's own PostgreSQL cluster, go
 *   (default: a new temp dir, removed on stop)
 * @param {number} [opts.port] default: a free one
 * @param {{ cert: string, key: string }} [opts.tls] also listen with TLS on another port
 * @param {string[]} [opts.extraArgs] more ferretdb flags (a replica set name…)
 */
/**
 * startOnce, tried again on new ports when a port found free was taken by
 * another process before FerretDB could bind it (tests start servers side by
 * side). A port the caller chose is not changed.
 */
async function startFerretDB(opts = {}) {
  for (let tries = 1; ; tries++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      if (opts.port || tries >= 3 || !/address already in use/.test(err.message)) throw err;
    }
  }
}

async function startOnce(opts) {
  const bin = binaryPath();
  const backend = opts.backend || (opts.postgresqlUrl ? 'postgresql' : defaultBackend());
  if (!BACKENDS.includes(backend)) throw new Error(`backend must be one of ${BACKENDS.join(', ')}, not "${backend}"`);
  let postgres = null; // a cluster of its own, stopped with it
  let postgresqlUrl = null;
  if (backend === 'postgresql') {
    postgresqlUrl = opts.postgresqlUrl || process.env.AAV_POSTGRESQL_URL;
    if (!postgresqlUrl) {
      postgres = await startPostgres({ dataDir: opts.dataDir && path.join(opts.dataDir, 'postgresql') });
      postgresqlUrl = postgres.url;
    }
  }
  // Over PostgreSQL, FerretDB itself keeps nothing on disk.
  const ownDir = !opts.dataDir && backend === 'sqlite';
  const dataDir = opts.dataDir || (ownDir ? fs.mkdtempSync(path.join(os.tmpdir(), 'ferretdb-')) : null);
  if (dataDir) fs.mkdirSync(dataDir, { recursive: true });
  const port = opts.port || (await freePort());
  const tlsPort = opts.tls ? await freePort() : null;
  const tlsArgs = opts.tls ? [`--listen-tls=127.0.0.1:${tlsPort}`, `--listen-tls-cert-file=${opts.tls.cert}`, `--listen-tls-key-file=${opts.tls.key}`] : [];
  const backendArgs =
    backend === 'postgresql' ? ['--handler=postgresql', `--postgresql-url=${customPlansUrl(postgresqlUrl)}`] : ['--handler=sqlite', `--sqlite-url=file:${path.resolve(dataDir)}/`];
  const args = [
    ...backendArgs,
    `--listen-addr=127.0.0.1:${port}`,
    '--debug-addr=-', // its default :8088 clashes between servers
    '--telemetry=disable',
    '--state-dir=-',
    '--log-level=error',
    ...tlsArgs,
    ...(opts.extraArgs || []),
  ];
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const deadline = Date.now() + 20000;
  while (!(await canConnect(port)) || (tlsPort && !(await canConnect(tlsPort)))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      if (postgres) await postgres.stop();
      if (ownDir) fs.rmSync(dataDir, { recursive: true, force: true });
      throw new Error(child.exitCode !== null ? `ferretdb exited (${child.exitCode}): ${stderr}` : `ferretdb did not listen on ${port} within 20 s: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    uri: `mongodb://127.0.0.1:${port}/`,
    port,
    tlsPort,
    pid: child.pid,
    process: child,
    dataDir,
    backend,
    postgresqlUrl,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) {
        let timer;
        const exited = new Promise((r) => child.once('exit', r));
        const late = new Promise((r) => {
          timer = setTimeout(r, 5000);
        });
        child.kill(signal);
        await Promise.race([exited, late]);
        clearTimeout(timer);
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGKILL');
          await exited;
        }
      }
      if (postgres) await postgres.stop();
      if (ownDir) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

module.exports = { startFerretDB, binaryPath, defaultBackend, ROOT };

if (require.main === module) {
  startFerretDB({ dataDir: path.join(ROOT, '.cache', 'ferretdb-data') }).then((server) => {
    console.log(`FerretDB (${server.backend}) listening: ${server.uri}  (Ctrl-C stops it)`);
    const stop = () => server.stop().then(() => process.exit(0));
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
