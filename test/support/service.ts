// Builds the example upload service on a test database, with either
// repository: the reference design on Mongoose, or this package.
import os from 'os';
import path from 'path';
import { promises as fs } from 'fs';
import type { Db } from 'mongodb';
import { AssetRepository } from 'atomic-asset-version';
import type { Asset, AssetRepositoryPort } from '../../examples/upload-service/src/asset-repository';
import { AssetService } from '../../examples/upload-service/src/asset-service';
import { FileStore } from '../../examples/upload-service/src/file-store';
import { MongooseAssetRepository } from '../../examples/upload-service/src/mongoose-asset-repository';

export type RepositoryKind = 'mongoose' | 'addon';

export async function makeRepository(
  kind: RepositoryKind,
  uri: string,
  dbName: string,
  collection: string,
  addonOptions: Record<string, unknown> = {},
): Promise<AssetRepositoryPort> {
  return kind === 'mongoose'
    ? MongooseAssetRepository.connect(uri, dbName, collection)
    : new AssetRepository({ uri, dbName, collection, ...addonOptions });
}

export async function makeService(repository: AssetRepositoryPort, db: Db, collection: string) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'assets-'));
  const service = new AssetService(repository, new FileStore(dir), db.collection<Asset>(collection));
  return { service, dir, cleanup: () => fs.rm(dir, { recursive: true, force: true }) };
}

export function fakeFile(name: string, body = `contents of ${name}`, mimetype = 'application/pdf') {
  const buffer = Buffer.from(body);
  return { originalname: name, mimetype, size: buffer.length, buffer };
}
