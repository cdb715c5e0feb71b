// `npm start` when it cannot start: it stops what it started (the FerretDB it
// launched) and says in one line what to do, instead of a raw stack and an
// orphaned database. Runs the compiled server as `npm start` does.
import { spawn } from 'child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'fs';
import net from 'net';
import os from 'os';
import path from 'path';
import request from 'supertest';
import ts from 'typescript';
import { uri } from '../../../test/support/db';

const ROOT = path.join(__dirname, '..', '..', '..');
const EXAMPLE = path.join(ROOT, 'examples', 'upload-service');
const SERVER = path.join(EXAMPLE, 'dist', 'server.js');

// As `npm start` builds it (tsc into dist/), minus the type check the other suites already make.
beforeAll(() => {
  mkdirSync(path.join(EXAMPLE, 'dist'), { recursive: true });
  for (const name of readdirSync(path.join(EXAMPLE, 'src')).filter((n) => n.endsWith('.ts'))) {
    const { outputText } = ts.transpileModule(readFileSync(path.join(EXAMPLE, 'src', name), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    });
    writeFileSync(path.join(EXAMPLE, 'dist', name.replace(/\.ts$/, '.js')), outputText);
  }
});

function runServer(env: Record<string, string | undefined>): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  const child = spawn(process.execPath, [SERVER], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const killer = setTimeout(() => child.kill('SIGKILL'), 40_000); // it must exit by itself long before
  return new Promise((resolve) =>
    child.on('exit', (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    }),
  );
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

async function takenPort(): Promise<net.Server> {
  const holder = net.createServer();
  await new Promise<void>((resolve) => holder.listen(0, resolve));
  return holder;
}

const oneLine = (stderr: string) => stderr.trim().split('\n');

test('port taken, FerretDB started by the service: it is stopped again, and one line says PORT=', async () => {
  const holder = await takenPort();
  const port = (holder.address() as net.AddressInfo).port;
  try {
    const run = await runServer({ PORT: String(port) });
    expect(run.code).toBe(1);
    expect(oneLine(run.stderr)).toEqual([`upload service: port ${port} is already in use; start it on another one: PORT=${port + 1} npm start`]);
    const ferret = /started FerretDB v[\d.]+ (?:\(\w+\) )?at mongodb:\/\/127\.0\.0\.1:(\d+)\//.exec(run.stdout);
    expect(ferret).not.toBeNull();
    expect(await canConnect(Number(ferret![1]))).toBe(false); // not orphaned
  } finally {
    holder.close();
  }
}, 60_000);

test('port taken with MONGODB_URI: one line, exit 1', async () => {
  const holder = await takenPort();
  const port = (holder.address() as net.AddressInfo).port;
  try {
    const run = await runServer({ PORT: String(port), MONGODB_URI: uri(), DB_NAME: 'aav_startup_unused' });
    expect(run.code).toBe(1);
    expect(oneLine(run.stderr)).toEqual([expect.stringContaining(`PORT=${port + 1}`)]);
  } finally {
    holder.close();
  }
}, 60_000);

test('a database that is not there, or a bad limit: one line each, within seconds', async () => {
  const down = await runServer({ PORT: '0', MONGODB_URI: 'mongodb://127.0.0.1:1/x' });
  expect(down.code).toBe(1);
  expect(down.ms).toBeLessThan(15_000);
  expect(oneLine(down.stderr)).toEqual([expect.stringMatching(/^upload service: cannot reach the database .*check MONGODB_URI/)]);
  const bad = await runServer({ PORT: '0', MONGODB_URI: uri(), MAX_FILES: 'many' });
  expect(bad.code).toBe(1);
  expect(oneLine(bad.stderr)).toEqual(['upload service: MAX_FILES=many is not a positive integer; fix or unset it']);
}, 60_000);

/** The service as `npm start` runs it, with its output, and a wait for a line of it. */
function spawnService(env: Record<string, string>) {
  const child = spawn(process.execPath, [SERVER], { env: { PATH: process.env.PATH, PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = { stdout: '', stderr: '' };
  child.stdout.on('data', (d) => (output.stdout += d));
  child.stderr.on('data', (d) => (output.stderr += d));
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const waitFor = async (what: () => RegExpExecArray | null, ms: number) => {
    for (const until = Date.now() + ms; Date.now() < until; await new Promise((r) => setTimeout(r, 50))) {
      const found = what();
      if (found) return found;
    }
    throw new Error(`not seen within ${ms} ms; stdout: ${output.stdout} stderr: ${output.stderr}`);
  };
  return { child, exited, waitFor, output };
}

// Issue 21, items 5 and 6: the FerretDB the service started is watched. Killed
// (-9), it is restarted on its port, with one log line when it goes and one
// when it is back (not one per request meanwhile), and uploads succeed
// again. At start-up, files no record names that are older than the grace
// period are removed, and the log says so.
test('its own FerretDB killed: restarted, one line each way, uploads work again; old orphan files swept at start-up', async () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'service-supervised-'));
  chmodSync(dataDir, 0o755); // on the default backend, the PostgreSQL server user must reach its cluster below
  const filesDir = path.join(dataDir, 'service-files');
  mkdirSync(filesDir, { recursive: true });
  const orphan = '0123abcd-0123-4123-8123-0123456789ab';
  writeFileSync(path.join(filesDir, orphan), 'left by a crash');
  const old = new Date(Date.now() - 2 * 24 * 3600_000);
  utimesSync(path.join(filesDir, orphan), old, old);

  const { child, exited, waitFor, output } = spawnService({ DATA_DIR: dataDir });
  try {
    const port = Number((await waitFor(() => /upload service: http:\/\/localhost:(\d+)\//.exec(output.stdout), 40_000))[1]);
    const ferret = /started FerretDB .* at mongodb:\/\/127\.0\.0\.1:(\d+)\/ \(pid (\d+)\)/.exec(output.stdout)!;
    const [ferretPort, ferretPid] = [Number(ferret[1]), Number(ferret[2])];
    await waitFor(() => /removed 1 orphan file/.exec(output.stdout), 10_000);
    expect(output.stdout).toContain(orphan);
    expect(readdirSync(filesDir)).not.toContain(orphan);

    const base = `http://127.0.0.1:${port}`;
    const order = '65f1a2b3c4d5e6f708192a3b';
    const upload = (name: string) => request(base).post(`/orders/${order}/assets`).attach('files', Buffer.from(name), { filename: name });
    expect((await upload('before.txt')).status).toBe(201);

    process.kill(ferretPid, 'SIGKILL');
    const down = await Promise.all([1, 2, 3, 4, 5, 6].map((i) => upload(`down-${i}.txt`)));
    for (const r of down) expect([201, 503]).toContain(r.status); // some may land after the restart
    await waitFor(() => /FerretDB running again \(pid (\d+)\)/.exec(output.stderr), 30_000);
    let after = await upload('after.txt');
    for (let i = 0; i < 40 && after.status !== 201; i += 1) {
      await new Promise((r) => setTimeout(r, 250));
      after = await upload('after.txt');
    }
    expect(after.status).toBe(201);
    expect(await canConnect(ferretPort)).toBe(true); // on its port: the service's URI still holds
    const lines = output.stderr.trim().split('\n');
    expect(lines.filter((l) => /FerretDB .*exited/.test(l))).toHaveLength(1);
    expect(lines.filter((l) => /running again/.test(l))).toHaveLength(1);
    expect(lines.filter((l) => /^503 /.test(l)).length).toBeLessThanOrEqual(2); // not one per request
    const listing = await request(base).get(`/orders/${order}/assets?limit=500`);
    const versions = listing.body.assets.map((a: any) => a.version).sort((a: number, b: number) => a - b);
    expect(versions).toEqual(versions.map((_: number, i: number) => i + 1)); // 1..n, no gap, no duplicate
    expect(listing.body.assets.filter((a: any) => a.fileName === 'after.txt')).toHaveLength(1);

    child.kill('SIGTERM');
    await exited;
    expect(await canConnect(ferretPort)).toBe(false); // stopped with the service, not restarted
  } finally {
    child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
}, 90_000);

// The same for the PostgreSQL the service starts under its FerretDB with
// AAV_BACKEND=postgresql: restarted on its port (FerretDB reconnects), one
// line each way, and meanwhile 503s, not 500s with a stack each. Run in the
// PostgreSQL run (`npm run test:postgres`), which has the server user it needs.
(process.env.AAV_POSTGRESQL_URL ? test : test.skip)(
  'its own PostgreSQL killed: restarted, one line each way, uploads work again',
  async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'service-supervised-pg-'));
    chmodSync(dataDir, 0o755); // the PostgreSQL server user must reach its cluster below
    const { child, exited, waitFor, output } = spawnService({ DATA_DIR: dataDir, AAV_BACKEND: 'postgresql' });
    try {
      const port = Number((await waitFor(() => /upload service: http:\/\/localhost:(\d+)\//.exec(output.stdout), 60_000))[1]);
      const pg = /started PostgreSQL at 127\.0\.0\.1:(\d+) \(pid (\d+)\)/.exec(output.stdout)!;
      const [pgPort, pgPid] = [Number(pg[1]), Number(pg[2])];
      const base = `http://127.0.0.1:${port}`;
      const order = '65f1a2b3c4d5e6f708192a3b';
      const upload = (name: string) => request(base).post(`/orders/${order}/assets`).attach('files', Buffer.from(name), { filename: name });
      expect((await upload('before.txt')).status).toBe(201);

      process.kill(pgPid, 'SIGKILL');
      const down = await Promise.all([1, 2, 3, 4].map((i) => upload(`down-${i}.txt`)));
      for (const r of down) expect([201, 503]).toContain(r.status);
      await waitFor(() => /PostgreSQL running again \(pid (\d+)\)/.exec(output.stderr), 60_000);
      let after = await upload('after.txt');
      for (let i = 0; i < 60 && after.status !== 201; i += 1) {
        await new Promise((r) => setTimeout(r, 250));
        after = await upload('after.txt');
      }
      expect(after.status).toBe(201);
      expect(await canConnect(pgPort)).toBe(true);
      const lines = output.stderr.trim().split('\n');
      expect(lines.filter((l) => /PostgreSQL .*exited/.test(l))).toHaveLength(1);
      expect(lines.filter((l) => /running again/.test(l))).toHaveLength(1);
      expect(output.stderr).not.toMatch(/^\s+at /m); // no stack per request
      const listing = await request(base).get(`/orders/${order}/assets?limit=500`);
      const versions = listing.body.assets.map((a: any) => a.version).sort((a: number, b: number) => a - b);
      expect(versions).toEqual(versions.map((_: number, i: number) => i + 1));
      expect(listing.body.assets.filter((a: any) => a.fileName === 'after.txt')).toHaveLength(1);
      child.kill('SIGTERM');
      await exited;
      expect(await canConnect(pgPort)).toBe(false);
    } finally {
      child.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    }
  },
  120_000,
);
