// Files no record names (issue 21 item 6): what a crash mid-upload left, and
// files kept after an unknown outcome that no retry settled. The sweep
// removes those older than the grace period, keeps younger ones and every
// file a record names, and says which were kept for an unknown outcome.
import { promises as fs } from 'fs';
import path from 'path';
import { ObjectId } from 'bson';
import { expectGapless, testDatabase, uri } from '../../../test/support/db';
import { fakeFile, idOf, makeRepository, makeService, markedKeys, storedKeys } from './support/service';
import type { AssetRepositoryPort } from '../src/asset-repository';

let t: any;
let repository: AssetRepositoryPort;
let made: Awaited<ReturnType<typeof makeService>>;
beforeAll(async () => {
  t = await testDatabase(__filename);
  repository = await makeRepository('addon', uri() as string, t.dbName, 'orphans');
  made = await makeService(repository, t.db, 'orphans');
});
afterAll(async () => {
  await repository.close();
  await made.cleanup();
  await t.done();
});

const HOUR = 3600_000;
async function age(dir: string, key: string, ms: number) {
  const when = new Date(Date.now() - ms);
  await fs.utimes(path.join(dir, key), when, when);
}

test('old files no record names go, marked or not; young ones and recorded ones stay', async () => {
  const { service, dir } = made;
  const kept = await service.uploadAsset(fakeFile('kept.pdf'), idOf('o').toHexString());
  await age(dir, kept.storageKey, 2 * HOUR); // old, but a record names it

  const crashed = await service.files.put(Buffer.from('left by a crash mid-upload'));
  await age(dir, crashed, 2 * HOUR);
  const unsettled = new ObjectId().toHexString();
  await service.files.put(Buffer.from('x')).then((k) => service.files.adopt(k, unsettled));
  await service.files.markUnsettled(unsettled, { _id: unsettled, reason: 'REPLY_LOST' });
  await age(dir, unsettled, 2 * HOUR);
  const young = await service.files.put(Buffer.from('still arriving or about to be recorded'));

  expect(await markedKeys(dir)).toEqual([unsettled]);
  const removed = await service.removeOrphans(HOUR);
  expect(removed.sort((a, b) => a.key.localeCompare(b.key))).toEqual(
    [
      { key: crashed, unsettled: false },
      { key: unsettled, unsettled: true },
    ].sort((a, b) => a.key.localeCompare(b.key)),
  );
  expect(await storedKeys(dir)).toEqual([kept.storageKey, young].sort());
  expect(await markedKeys(dir)).toEqual([]);
  await expectGapless(t.db, 'orphans', idOf('o'), 1);
  // Nothing else goes on a second sweep, however short the grace, while a record names it.
  expect(await service.removeOrphans(HOUR)).toEqual([]);
  await age(dir, young, 2 * HOUR);
  expect((await service.removeOrphans(HOUR)).map((r) => r.key)).toEqual([young]);
  expect(await storedKeys(dir)).toEqual([kept.storageKey]);
});
