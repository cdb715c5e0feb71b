'use strict';

// Peak RSS of the upload service for 30 concurrent requests of 20 x 9 MiB
// (issue 10, row 4). The service runs in a child process of its own
// (rss-target.js) on a FerretDB this script starts; traffic goes to
// 127.0.0.1 only. Usage:
//   node examples/upload-service/scripts/measure-rss.js [compiled-src-dir] [label]
// compiled-src-dir holds app.js, asset-service.js and file-store.js
// (default: examples/upload-service/dist, which `npm start` builds).
const { fork } = require('child_process');
const fs = require('fs');
const http = require('http');
const os = require('os');
const path = require('path');

const ROOT = path.join(__dirname, '..', '..', '..');
const { startFerretDB } = require(path.join(ROOT, 'scripts', 'ferretdb.js'));

const REQUESTS = 30;
const FILES = 20;
const FILE_SIZE = 9 * 1024 * 1024;

function peakRss(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)[1]) * 1024;
}

/** One multipart request of FILES files, streamed from one shared buffer. */
function upload(port, i, bytes) {
  const boundary = `rss${i}`;
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: `/orders/65f1a2b3c4d5e6f708192a3b/assets` /* an ObjectId: today's app refuses other order ids; the old one takes any */,
        headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}`, 'Transfer-Encoding': 'chunked' },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      },
    );
    req.on('error', (err) => resolve(err.code));
    (async () => {
      for (let f = 0; f < FILES; f += 1) {
        const head = `--${boundary}\r\nContent-Disposition: form-data; name="files"; filename="r${i}-${f}.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`;
        if (!req.write(head)) await new Promise((r) => req.once('drain', r));
        if (!req.write(bytes)) await new Promise((r) => req.once('drain', r));
        req.write('\r\n');
      }
      req.end(`--${boundary}--\r\n`);
    })();
  });
}

async function main() {
  const srcDir = path.resolve(process.argv[2] || path.join(ROOT, 'examples', 'upload-service', 'dist'));
  const label = process.argv[3] || path.basename(srcDir);
  const db = await startFerretDB();
  const filesDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rss-files-'));
  const target = fork(path.join(__dirname, 'rss-target.js'), [srcDir, db.uri, filesDir], {
    env: { ...process.env, NODE_PATH: path.join(ROOT, 'node_modules') },
  });
  try {
    const port = await new Promise((resolve, reject) => {
      target.once('message', resolve);
      target.once('exit', (code) => reject(new Error(`target exited ${code}`)));
    });
    const idle = peakRss(target.pid);
    const bytes = Buffer.alloc(FILE_SIZE, 0x5a);
    const started = Date.now();
    const statuses = await Promise.all(Array.from({ length: REQUESTS }, (_, i) => upload(port, i, bytes)));
    const seconds = (Date.now() - started) / 1000;
    const peak = peakRss(target.pid);
    const count = {};
    for (const s of statuses) count[s] = (count[s] || 0) + 1;
    const mib = (n) => `${(n / 1024 / 1024).toFixed(0)} MiB`;
    console.log(JSON.stringify({ label, requests: REQUESTS, files: FILES, fileMiB: FILE_SIZE / 1024 / 1024, statuses: count, seconds, idleRss: mib(idle), peakRss: mib(peak) }));
  } finally {
    target.kill('SIGKILL');
    await db.stop();
    fs.rmSync(filesDir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
