// The main job: the upload service on http://localhost:PORT. Uses
// MONGODB_URI when set; otherwise starts a local FerretDB (data under
// DATA_DIR, default .cache: service-data/, kept across restarts, files under
// service-files/), restarts it if it dies (supervisor.ts) and stops it on
// exit. Its backend is a PostgreSQL cluster of its own, supervised the same
// way, or SQLite with AAV_BACKEND=sqlite.
import { createRequire } from 'module';
import path from 'path';
import { MongoClient } from 'mongodb';
import mongoose from 'mongoose';
import { AssetRepository } from 'atomic-asset-version';
import { AssetService } from './asset-service';
import { assetModel, IAsset } from './asset-model';
import type { Asset, AssetRepositoryPort } from './asset-repository';
import { FileStore } from './file-store';
import { createApp } from './app';
import { DATABASE_BOUNDS, withBounds } from './database';
import { Started, Supervisor } from './supervisor';
import { createServer, listen } from './http-server';
import { limitsFromEnv } from './limits';

const ROOT = path.join(__dirname, '..', '..', '..');
const EXAMPLE_ORDER = '65f1a2b3c4d5e6f708192a3b'; // orders are ObjectIds, as in the page's default
// The database launchers are the repository's own scripts: plain JavaScript
// outside this TypeScript project, loaded from its root at run time.
const loadScript = createRequire(__filename);
const { startFerretDB, defaultBackend } = loadScript(path.join(ROOT, 'scripts', 'ferretdb.js')) as {
  startFerretDB(options: { dataDir: string; port?: number; backend: string; postgresqlUrl?: string }): Promise<FerretDB>;
  defaultBackend(): string;
};
const { startPostgres } = loadScript(path.join(ROOT, 'scripts', 'postgres.js')) as {
  startPostgres(options: { dataDir: string; port?: number }): Promise<Started & { url: string; port: number }>;
};

type FerretDB = Started & { uri: string; port: number; backend: string };

/**
 * The embedded database, supervised: PostgreSQL first when it is the backend
 * (restarted on its own port, so FerretDB's pool simply reconnects), then
 * FerretDB, restarted on its port, so the service's URI stays valid.
 */
async function startEmbedded(dataDir: string): Promise<{ uri: string; backend: string; pid?: number }> {
  let postgresqlUrl: string | undefined = process.env.AAV_POSTGRESQL_URL;
  if (defaultBackend() === 'postgresql' && !postgresqlUrl) {
    let pgPort: number | undefined;
    const postgres = new Supervisor<Started & { url: string; port: number }>('PostgreSQL', () => startPostgres({ dataDir: path.join(dataDir, 'postgresql'), port: pgPort }));
    const first = await postgres.run();
    started.push(() => postgres.stop());
    pgPort = first.port;
    postgresqlUrl = first.url;
    console.log(`started PostgreSQL at 127.0.0.1:${first.port} (pid ${first.pid})`);
  }
  let port: number | undefined;
  const ferret = new Supervisor<FerretDB>('FerretDB', () =>
    startFerretDB({ dataDir, port, ...(postgresqlUrl ? { backend: 'postgresql', postgresqlUrl } : { backend: 'sqlite' }) }),
  );
  const first = await ferret.run();
  started.push(() => ferret.stop());
  port = first.port;
  return first;
}

// What was started, to stop in reverse order on exit or on a failed start.
const started: Array<() => Promise<unknown>> = [];
async function stopAll(): Promise<void> {
  for (const stop of started.splice(0).reverse()) await stop().catch(() => {});
}

/** One line saying what went wrong and what to do about it. */
function startupFailure(err: unknown, port: number): string {
  const { code, message, name } = (err ?? {}) as { code?: unknown; message?: string; name?: string };
  if (code === 'EADDRINUSE') return `upload service: port ${port} is already in use; start it on another one: PORT=${port + 1} npm start`;
  if (code === 'EACCES') return `upload service: no permission to listen on port ${port}; use a port above 1023: PORT=3000 npm start`;
  if (/not a positive integer/.test(message ?? '')) return `upload service: ${message}; fix or unset it`;
  if (/^Mongo/.test(name ?? '')) return `upload service: cannot reach the database (${message}); check MONGODB_URI, or unset it to use a local FerretDB`;
  return `upload service failed to start: ${message ?? err} (PORT=${port}, MONGODB_URI ${process.env.MONGODB_URI ? 'set' : 'unset'})`;
}

/** At start-up and then periodically: files no record names, older than the grace period, go; each sweep that removes any logs one line. */
function sweepOrphans(service: AssetService, graceMs: number, everyMs: number): void {
  const sweep = async () => {
    try {
      const removed = await service.removeOrphans(graceMs);
      if (removed.length) {
        const unsettled = removed.filter((r) => r.unsettled).length;
        console.log(
          `removed ${removed.length} orphan file(s) older than ${graceMs} ms that no record names (${unsettled} kept after an unknown outcome no retry settled): ${removed.map((r) => r.key).join(' ')}`,
        );
      }
    } catch (err) {
      console.warn(`orphan sweep failed, will try again: ${(err as Error | null)?.message}`);
    }
  };
  void sweep();
  const timer = setInterval(sweep, everyMs);
  timer.unref();
  started.push(async () => clearInterval(timer));
}

async function main(port: number): Promise<void> {
  const limits = limitsFromEnv(process.env);
  const dataDir = process.env.DATA_DIR || path.join(ROOT, '.cache');
  let uri = process.env.MONGODB_URI;
  if (!uri) {
    const server = await startEmbedded(path.join(dataDir, 'service-data'));
    uri = server.uri;
    console.log(`started FerretDB v1.24.2 (${server.backend}) at ${uri} (pid ${server.pid})`);
  }
  uri = withBounds(uri);
  const dbName = process.env.DB_NAME || 'uploads';
  // The app's one connection, as a Mongoose service has it; the repository
  // takes the database, collection and connection string from the model.
  const connection = await mongoose.createConnection(uri, { dbName }).asPromise();
  started.push(() => connection.close());
  const Asset = assetModel(connection, 'assets');
  await Asset.init(); // the model's indexes, before the first upload needs them
  // was: new MongooseAssetRepository(...), the reference design on the same model
  const repository: AssetRepositoryPort = new AssetRepository<IAsset>({ model: Asset, recoveryTimeMS: DATABASE_BOUNDS.recoveryTimeMS });
  started.push(() => repository.close());
  const client = await MongoClient.connect(uri, { maxPoolSize: DATABASE_BOUNDS.maxPoolSize, waitQueueTimeoutMS: DATABASE_BOUNDS.waitQueueTimeoutMS });
  started.push(() => client.close());
  const db = client.db(dbName);
  const service = new AssetService(repository, new FileStore(path.join(dataDir, 'service-files')), db.collection<Asset>('assets'), {
    keys: db.collection('idempotency_keys'),
    maxTimeMS: DATABASE_BOUNDS.maxTimeMS,
  });
  const http = createServer(createApp({ service, ...limits }), limits);
  await listen(http, port);
  started.push(() => new Promise((resolve) => http.close(resolve)));
  sweepOrphans(service, limits.orphanGraceMs, limits.orphanSweepIntervalMs);
  const actualPort = (http.address() as { port: number }).port;
  console.log(`upload service: http://localhost:${actualPort}/   (Ctrl-C stops it)`);
  console.log(`  curl -F files=@README.md http://localhost:${port}/orders/${EXAMPLE_ORDER}/assets`);
  console.log(`  curl http://localhost:${port}/orders/${EXAMPLE_ORDER}/assets`);
  const stop = async () => {
    http.closeAllConnections();
    await stopAll();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

const port = Number(process.env.PORT || 3000);
main(port).catch(async (err) => {
  await stopAll();
  console.error(startupFailure(err, port));
  process.exit(1);
});
