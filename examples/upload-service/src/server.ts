// The main job: the upload service on http://localhost:PORT. Uses
// MONGODB_URI when set; otherwise starts a local FerretDB (data under
// .cache/service-data) and stops it on exit. Its backend is SQLite, or a
// PostgreSQL cluster of its own with AAV_BACKEND=postgresql.
import path from 'path';
import { MongoClient } from 'mongodb';
import { AssetRepository } from 'atomic-asset-version';
import { AssetService } from './asset-service';
import type { Asset, AssetRepositoryPort } from './asset-repository';
import { FileStore } from './file-store';
import { createApp } from './app';

const ROOT = path.join(__dirname, '..', '..', '..');
// eslint-disable-next-line @typescript-eslint/no-var-requires
const { startFerretDB } = require(path.join(ROOT, 'scripts', 'ferretdb.js'));

async function main(): Promise<void> {
  let server: { uri: string; backend: string; stop(): Promise<void> } | null = null;
  let uri = process.env.MONGODB_URI;
  if (!uri) {
    server = await startFerretDB({ dataDir: path.join(ROOT, '.cache', 'service-data') });
    uri = server!.uri;
    console.log(`started FerretDB v1.24.2 (${server!.backend}) at ${uri}`);
  }
  const dbName = process.env.DB_NAME || 'uploads';
  const repository: AssetRepositoryPort = new AssetRepository({ uri, dbName, collection: 'assets' });
  const client = await MongoClient.connect(uri);
  const service = new AssetService(repository, new FileStore(path.join(ROOT, '.cache', 'service-files')), client.db(dbName).collection<Asset>('assets'));
  const app = createApp({ service });
  const port = Number(process.env.PORT || 3000);
  const http = app.listen(port, () => {
    console.log(`upload service: http://localhost:${port}/   (Ctrl-C stops it)`);
    console.log(`  curl -F files=@README.md http://localhost:${port}/orders/ord-1/assets`);
    console.log(`  curl http://localhost:${port}/orders/ord-1/assets`);
  });
  const stop = async () => {
    http.close();
    await repository.close();
    await client.close();
    if (server) await server.stop();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
