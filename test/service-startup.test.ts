// `npm start` when it cannot start: it stops what it started (the FerretDB it
// launched) and says in one line what to do, instead of a raw stack and an
// orphaned database. Runs the compiled server as `npm start` does.
import { spawn } from 'child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'fs';
import net from 'net';
import path from 'path';
import ts from 'typescript';
import { uri } from './support/db';

const ROOT = path.join(__dirname, '..');
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
