// One suite for the existing upload service, run against each repository in
// turn. The only difference between the two runs is which repository is
// constructed: that is the proof uploadAsset() switches without changes.
import { promises as fs } from 'fs';
import { testDatabase, expectGapless, range, uri } from './support/db';
import { makeRepository, makeService, fakeFile, RepositoryKind } from './support/service';
import type { AssetRepositoryPort } from '../examples/upload-service/src/asset-repository';
import type { AssetService } from '../examples/upload-service/src/asset-service';

describe.each<RepositoryKind>(['mongoose', 'addon'])('AssetService.uploadAsset with the %s repository', (kind) => {
  let t: any;
  let repository: AssetRepositoryPort;
  let service: AssetService;
  let cleanup: () => Promise<void>;
  let dir: string;
  const collection = `svc_${kind}`;

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

  test('stores the file and records v1 with its metadata', async () => {
    const asset = await service.uploadAsset(fakeFile('brief.pdf'), 'ord-1', 'alice');
    expect(asset).toMatchObject({ orderId: 'ord-1', fileName: 'brief.pdf', mimeType: 'application/pdf', uploadedBy: 'alice', version: 1, versionLabel: 'v1' });
    expect(asset.createdAt).toBeInstanceOf(Date);
    const { bytes } = await service.getAssetFile('ord-1', 1);
    expect(bytes.toString()).toBe('contents of brief.pdf');
    await expectGapless(t.db, collection, 'ord-1', 1);
  });

  test('three concurrent uploads get 1, 2, 3 and the next one continues at 4', async () => {
    await Promise.all(range(3).map((i) => service.uploadAsset(fakeFile(`p${i}.pdf`), 'ord-2', 'bob')));
    const fourth = await service.uploadAsset(fakeFile('p4.pdf'), 'ord-2', 'bob');
    expect(fourth.version).toBe(4);
    await expectGapless(t.db, collection, 'ord-2', 4);
  });

  test('orders keep independent sequences', async () => {
    await Promise.all(['a', 'b'].flatMap((o) => range(2).map((i) => service.uploadAsset(fakeFile(`${o}${i}.pdf`), `ord-${o}`, 'carol'))));
    await expectGapless(t.db, collection, 'ord-a', 2);
    await expectGapless(t.db, collection, 'ord-b', 2);
  });

  test('a refused upload leaves neither a record nor its bytes', async () => {
    await expect(service.uploadAsset(fakeFile(''), 'ord-3', 'dave')).rejects.toMatchObject({ name: 'ValidationError' });
    expect(await t.db.collection(collection).countDocuments({ orderId: 'ord-3' })).toBe(0);
    // One stored file per record: the refused upload's bytes were removed.
    expect((await fs.readdir(dir)).length).toBe(await t.db.collection(collection).countDocuments());
  });

  test('listAssets gives the versions newest first', async () => {
    const list = await service.listAssets('ord-2');
    expect(list.map((a) => a.version)).toEqual([4, 3, 2, 1]);
  });
});
