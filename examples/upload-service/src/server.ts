// The main job: the upload service on http://localhost:PORT. Uses
// MONGODB_URI when set; otherwise starts a local FerretDB (data under
// .cache/service-data, kept across restarts) and stops it on exit. Its
// backend is a PostgreSQL cluster of its own, or SQLite with AAV_BACKEND=sqlite.
import path from 'path';
import { MongoClient } from 'mongodb';
import mongoose from 'mongoose';
import { AssetRepository } from 'atomic-asset-version';
import { AssetService } from './asset-service';
import { assetModel, IAsset } from './asset-model';
import type { Asset, AssetRepositoryPort } from './asset-repository';
import { FileStore } from './file-store';
import { createApp } from './app';
import { withFastFailure } from './database';
import { createServer, listen } from './http-server';
import { limitsFromEnv } from './limits';

const ROOT = path.join(__dirname, '..', '..', '..');
const EXAMPLE_ORDER = '65f1a2b3c4d5e6f708192a3b'; // orders are ObjectIds, as in the page's default
// eslint-disable-next-line @typescript-eslint/no-var-requires
const { startFerretDB } = require(path.join(ROOT, 'scripts', 'ferretdb.js'));

// What was started, to stop in reverse order on exit or on a failed start.
const started: Array<() => Promise<unknown>> = [];
async function stopAll(): Promise<void> {
  for (const stop of started.splice(0).reverse()) await stop().catch(() => {});
}

/** One line saying what went wrong and what to do about it. */
function startupFailure(err: any, port: number): string {
  if (err?.code === 'EADDRINUSE') return `upload service: port ${port} is already in use; start it on another one: PORT=${port + 1} npm start`;
  if (err?.code === 'EACCES') return `upload service: no permission to listen on port ${port}; use a port above 1023: PORT=3000 npm start`;
  if (/not a positive integer/.test(err?.message)) return `upload service: ${err.message}; fix or unset it`;
  if (/^Mongo/.test(err?.name)) return `upload service: cannot reach the database (${err.message}); check MONGODB_URI, or unset it to use a local FerretDB`;
  return `upload service failed to start: ${err?.message ?? err} (PORT=${port}, MONGODB_URI ${process.env.MONGODB_URI ? 'set' : 'unset'})`;
}

async function main(port: number): Promise<void> {
  const limits = limitsFromEnv(process.env);
  let server: { uri: string; backend: string; stop(): Promise<void> } | null = null;
  let uri = process.env.MONGODB_URI;
  if (!uri) {
    server = await startFerretDB({ dataDir: path.join(ROOT, '.cache', 'service-data') });
    started.push(() => server!.stop());
    uri = server!.uri;
    console.log(`started FerretDB v1.24.2 (${server!.backend}) at ${uri}`);
  }
  uri = withFastFailure(uri);
  const dbName = process.env.DB_NAME || 'uploads';
  // The app's one connection, as a Mongoose service has it; the repository
  // takes the database, collection and connection string from the model.
  const connection = await mongoose.createConnection(uri, { dbName }).asPromise();
  started.push(() => connection.close());
  const Asset = assetModel(connection, 'assets');
  await Asset.init(); // the model's indexes, before the first upload needs them
  // was: new MongooseAssetRepository(...), the reference design on the same model
  const repository: AssetRepositoryPort = new AssetRepository<IAsset>({ model: Asset });
  started.push(() => repository.close());
  const client = await MongoClient.connect(uri);
  started.push(() => client.close());
  const service = new AssetService(repository, new FileStore(path.join(ROOT, '.cache', 'service-files')), client.db(dbName).collection<Asset>('assets'));
  const http = createServer(createApp({ service, ...limits }), limits);
  await listen(http, port);
  started.push(() => new Promise((resolve) => http.close(resolve)));
  console.log(`upload service: http://localhost:${port}/   (Ctrl-C stops it)`);
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
