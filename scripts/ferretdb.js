'use strict';

// Starts a throwaway FerretDB (SQLite backend, loopback, telemetry off) and
// stops it. Used by the Jest global setup, the demo and the benchmark when
// MONGODB_URI is not set. As a command: `node scripts/ferretdb.js` runs one
// in the foreground and prints its URI.
const { spawn, execFileSync } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');

const ROOT = path.join(__dirname, '..');

function binaryPath() {
  return execFileSync('bash', [path.join(__dirname, 'build-ferretdb.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * @param {object} [opts]
 * @param {string} [opts.dataDir] where SQLite files go (default: a new temp dir, removed on stop)
 * @param {number} [opts.port] default: a free one
 * @param {{ cert: string, key: string }} [opts.tls] also listen with TLS on another port
 * @param {string[]} [opts.extraArgs] more ferretdb flags (a replica set name…)
 */
async function startFerretDB(opts = {}) {
  const bin = binaryPath();
  const ownDir = !opts.dataDir;
  const dataDir = opts.dataDir || fs.mkdtempSync(path.join(os.tmpdir(), 'ferretdb-'));
  fs.mkdirSync(dataDir, { recursive: true });
  const port = opts.port || (await freePort());
  const tlsPort = opts.tls ? await freePort() : null;
  const tlsArgs = opts.tls
    ? [`--listen-tls=127.0.0.1:${tlsPort}`, `--listen-tls-cert-file=${opts.tls.cert}`, `--listen-tls-key-file=${opts.tls.key}`]
    : [];
  const args = [
    '--handler=sqlite',
    `--sqlite-url=file:${path.resolve(dataDir)}/`,
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
    if (child.exitCode !== null) throw new Error(`ferretdb exited (${child.exitCode}): ${stderr}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`ferretdb did not listen on ${port} within 20 s: ${stderr}`);
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
      if (ownDir) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

module.exports = { startFerretDB, binaryPath, ROOT };

if (require.main === module) {
  startFerretDB({ dataDir: path.join(ROOT, '.cache', 'ferretdb-data') }).then((server) => {
    console.log(`FerretDB listening: ${server.uri}  (Ctrl-C stops it)`);
    const stop = () => server.stop().then(() => process.exit(0));
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
