// Builds the example upload service on a test database, with either
// repository on the example's model: the reference design on Mongoose, or
// this package in model mode.
import os from 'os';
import path from 'path';
import { createHash } from 'crypto';
import { promises as fs } from 'fs';
import type { Db } from 'mongodb';
import mongoose from 'mongoose';
import { ObjectId } from 'bson';
import { AssetRepository } from 'atomic-asset-version';
import { assetModel, IAsset } from '../../src/asset-model';
import type { Asset, AssetRepositoryPort } from '../../src/asset-repository';
import { AssetService } from '../../src/asset-service';
import { FileStore } from '../../src/file-store';
import { MongooseAssetRepository } from '../../src/mongoose-asset-repository';

export type RepositoryKind = 'mongoose' | 'addon';

export async function makeRepository(
  kind: RepositoryKind,
  uri: string,
  dbName: string,
  collection: string,
  addonOptions: Record<string, unknown> = {},
): Promise<AssetRepositoryPort> {
  if (kind === 'mongoose') return MongooseAssetRepository.connect(uri, dbName, collection);
  // As the app has it: its connection (not awaited: a database down at start
  // is the repository's to report), its model, the repository on the model.
  // Without autoIndex: the repository makes the index it needs, and on
  // FerretDB Mongoose's background build of the same index racing it can
  // fail (server.ts awaits Asset.init() before serving instead).
  // An upload made before the connection opens waits for it as Mongoose's
  // buffering would; bufferTimeoutMS as the service's serverSelectionTimeoutMS,
  // so a database down at start answers 503 within the service's deadline.
  const connection = mongoose.createConnection(uri, { dbName, autoIndex: false, bufferTimeoutMS: 3000 } as mongoose.ConnectOptions);
  connection.on('error', () => {});
  connection.asPromise().catch(() => {});
  const repository = new AssetRepository<IAsset>({ model: assetModel(connection, collection), ...addonOptions });
  return {
    createWithAtomicVersion: (data, retryCount) => repository.createWithAtomicVersion(data, retryCount),
    async close() {
      await repository.close();
      await connection.close();
    },
  };
}

/** An order's or a user's id, from a name a test can read: the records hold ObjectIds. */
export function idOf(name: string): ObjectId {
  return new ObjectId(createHash('sha256').update(name).digest('hex').slice(0, 24));
}

export async function makeService(repository: AssetRepositoryPort, db: Db, collection: string) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'assets-'));
  const service = new AssetService(repository, new FileStore(dir), db.collection<Asset>(collection), { keys: db.collection(`${collection}_keys`) });
  return { service, dir, cleanup: () => fs.rm(dir, { recursive: true, force: true }) };
}

export function fakeFile(name: string, body = `contents of ${name}`, mimetype = 'application/pdf') {
  const buffer = Buffer.from(body);
  return { originalname: name, mimetype, size: buffer.length, buffer };
}

/** A file store directory, with the files it holds (not the markers beside files kept after an unknown outcome). */
export async function storedKeys(dir: string): Promise<string[]> {
  return (await fs.readdir(dir).catch(() => [] as string[])).filter((n) => !n.endsWith('.unsettled')).sort();
}

/** The keys of files marked as kept after an unknown outcome. */
export async function markedKeys(dir: string): Promise<string[]> {
  return (await fs.readdir(dir).catch(() => [] as string[]))
    .filter((n) => n.endsWith('.unsettled'))
    .map((n) => n.replace(/\.unsettled$/, ''))
    .sort();
}

/**
 * The file store and the records agree: every record's bytes are there and
 * every file belongs to a record (no orphan, no partial file). Returns the keys.
 * A failed request's partial file may still be being removed as its error
 * response goes out (once in seven CI runs, a full disk's): they must agree
 * within two seconds.
 */
export async function expectConsistent(db: Db, collection: string, dir: string): Promise<string[]> {
  const read = async () => ({
    records: (
      await db
        .collection(collection)
        .find({}, { projection: { storageKey: 1 } })
        .toArray()
    )
      .map((d: any) => d.storageKey)
      .sort(),
    files: await storedKeys(dir),
  });
  let seen = await read();
  for (let waited = 0; waited < 2000 && JSON.stringify(seen.files) !== JSON.stringify(seen.records); waited += 100) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    seen = await read();
  }
  expect(seen.files).toEqual(seen.records);
  return seen.records;
}

/** A multipart body by hand, for what supertest will not send (many fields, chosen headers). */
export function multipart(parts: Array<{ name: string; value?: string | Buffer; filename?: string; type?: string }>, boundary = 'xBOUNDARYx') {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const disposition = `form-data; name="${p.name}"${p.filename !== undefined ? `; filename="${p.filename}"` : ''}`;
    const type = p.type ? `\r\nContent-Type: ${p.type}` : '';
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}${type}\r\n\r\n`), Buffer.from(p.value ?? ''), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

/** idOf(name) as a URL or a form field carries it. */
export const hexOf = (name: string): string => idOf(name).toHexString();
