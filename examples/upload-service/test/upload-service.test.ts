// One suite for the existing upload service, run against each repository in
// turn, both on the example's model (asset-model.ts). The only difference
// between the two runs is which repository is constructed, and what each
// resolved is compared at the end: that is the proof uploadAsset() switches
// without changes.
import { promises as fs } from 'fs';
import mongoose from 'mongoose';
import { testDatabase, expectGapless, range, uri } from '../../../test/support/db';
import { makeRepository, makeService, fakeFile, idOf, RepositoryKind } from './support/service';
import type { Asset, AssetRepositoryPort } from '../src/asset-repository';
import type { AssetService } from '../src/asset-service';

const ORDER = (name: string) => idOf(name).toHexString();
const alice = idOf('alice').toHexString();

/** What must be equal across repositories: all but the _id, the timestamps and the random storage key. */
function comparable(asset: Asset) {
  const { _id, createdAt, updatedAt, storageKey, fileUrl, ...rest } = asset as any;
  return { ...rest, fileUrl: fileUrl.replace(storageKey, '<key>') };
}
const resolved: Record<RepositoryKind, unknown[]> = { mongoose: [], addon: [] };
const refused: Record<RepositoryKind, unknown[]> = { mongoose: [], addon: [] };

describe.each<RepositoryKind>(['mongoose', 'addon'])('AssetService.uploadAsset with the %s repository', (kind) => {
  let t: any;
  let repository: AssetRepositoryPort;
  let service: AssetService;
  let cleanup: () => Promise<void>;
  let dir: string;
  const collection = `svc_${kind}`;
  const upload = async (...args: Parameters<AssetService['uploadAsset']>) => {
    const asset = await service.uploadAsset(...args);
    resolved[kind].push(comparable(asset));
    return asset;
  };

  beforeAll(async () => {
    t = await testDatabase(`${__filename}_${kind}`);
    repository = await makeRepository(kind, uri() as string, t.dbName, collection);
    ({ service, cleanup, dir } = await makeService(repository, t.db, collection));
  });
  afterAll(async () => {
    await repository.close();
    await cleanup();
    await t.done();
  });

  test('stores the file and records v1 as the model builds it: cast ids, default status, derived extension, __v, timestamps', async () => {
    const asset = await upload(fakeFile('Brief.PDF'), ORDER('ord-1'), alice);
    expect(asset).toMatchObject({
      orderId: idOf('ord-1'),
      uploadedBy: idOf('alice'),
      fileName: 'Brief.PDF',
      mimeType: 'application/pdf',
      status: 'active',
      extension: 'pdf',
      version: 1,
      versionLabel: 'v1',
      __v: 0,
    });
    expect(asset.orderId).toBeInstanceOf(mongoose.Types.ObjectId);
    expect(asset.fileUrl).toBe(`/files/${asset.storageKey}`);
    expect(asset.createdAt).toBeInstanceOf(Date);
    const { bytes } = await service.getAssetFile(ORDER('ord-1'), 1);
    expect(bytes.toString()).toBe('contents of Brief.PDF');
    await expectGapless(t.db, collection, idOf('ord-1'), 1);
  });

  test('three concurrent uploads get 1, 2, 3 and the next one continues at 4', async () => {
    const first = await Promise.all(range(3).map((i) => service.uploadAsset(fakeFile(`p${i}.pdf`), ORDER('ord-2'), alice)));
    resolved[kind].push(first.map((a) => a.versionLabel).sort());
    const fourth = await upload(fakeFile('p4.pdf'), ORDER('ord-2'), alice);
    expect(fourth.version).toBe(4);
    await expectGapless(t.db, collection, idOf('ord-2'), 4);
  });

  test('orders keep independent sequences', async () => {
    await Promise.all(['a', 'b'].flatMap((o) => range(2).map((i) => service.uploadAsset(fakeFile(`${o}${i}.pdf`), ORDER(`ord-${o}`)))));
    await expectGapless(t.db, collection, idOf('ord-a'), 2);
    await expectGapless(t.db, collection, idOf('ord-b'), 2);
  });

  test('a refused upload (the schema says why) leaves neither a record nor its bytes', async () => {
    const err = await service.uploadAsset(fakeFile('x.pdf', 'x', ''), ORDER('ord-3'), alice).catch((e) => e);
    expect(err).toBeInstanceOf(mongoose.Error.ValidationError);
    refused[kind].push({ name: err.name, paths: Object.keys(err.errors) });
    await expect(service.uploadAsset(fakeFile('y.pdf'), ORDER('ord-3'), 'not-a-user-id')).rejects.toMatchObject({ name: 'ValidationError', field: 'uploadedBy' });
    expect(await t.db.collection(collection).countDocuments({ orderId: idOf('ord-3') })).toBe(0);
    // One stored file per record: the refused uploads' bytes were removed.
    expect((await fs.readdir(dir)).length).toBe(await t.db.collection(collection).countDocuments());
  });

  test('listAssets gives the versions newest first', async () => {
    const list = await service.listAssets(ORDER('ord-2'));
    expect(list.map((a) => a.version)).toEqual([4, 3, 2, 1]);
  });
});

test('both repositories resolved deep-equal documents, and refused alike', () => {
  expect(resolved.addon).toHaveLength(3);
  expect(resolved.addon).toEqual(resolved.mongoose);
  expect(refused.addon).toEqual(refused.mongoose);
  expect(refused.addon).toEqual([{ name: 'ValidationError', paths: ['mimeType'] }]);
});
