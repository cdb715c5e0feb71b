// A file store that runs out of space (issue 10, row 6), for real: the
// store is a 1 MiB tmpfs mounted for this test (needs root; reported skipped
// otherwise). A full disk answers 507, leaves no partial file, and the
// records and the files stay one to one.
import { execFileSync } from 'child_process';
import os from 'os';
import path from 'path';
import { mkdtempSync, promises as fs } from 'fs';
import request from 'supertest';
import type { Db } from 'mongodb';
import { createApp } from '../src/app';
import { AssetService } from '../src/asset-service';
import { needs } from '../../../test/support/needs';
import { FileStore } from '../src/file-store';
import type { Asset, AssetRepositoryPort } from '../src/asset-repository';
import { expectGapless, range, testDatabase, uri } from '../../../test/support/db';
import { expectConsistent, fakeFile, makeRepository, storedKeys, idOf, hexOf } from './support/service';

const mountPoint = mkdtempSync(path.join(os.tmpdir(), 'full-store-'));
function tryMount(): string | null {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mountPoint], { stdio: 'pipe' });
    return null;
  } catch (err: any) {
    return String(err.stderr || err.message).trim();
  }
}
const mountError = tryMount();
if (mountError) console.warn(`service-disk: cannot mount a tmpfs (${mountError}); the disk-full tests are skipped`);
const maybe = needs('root', mountError ? `cannot mount a tmpfs: ${mountError}` : true).test;

let t: any;
let repository: AssetRepositoryPort;
let service: AssetService;
let app: ReturnType<typeof createApp>;
const dir = path.join(mountPoint, 'files');

beforeAll(async () => {
  t = await testDatabase(__filename);
  repository = await makeRepository('addon', uri() as string, t.dbName, 'disk');
  service = new AssetService(repository, new FileStore(dir), (t.db as Db).collection<Asset>('disk'));
  app = createApp({ service });
});
afterAll(async () => {
  await repository.close();
  await t.done();
  if (!mountError) execFileSync('umount', [mountPoint]);
  await fs.rm(mountPoint, { recursive: true, force: true });
});

const kib = (n: number) => Buffer.alloc(n * 1024, 0x61);

maybe('a request that fills the disk answers 507, and neither its partial file nor its earlier files stay', async () => {
  const warn = jest.spyOn(console, 'warn').mockImplementation(() => {});
  let req = request(app).post(`/orders/${hexOf('full')}/assets`);
  for (const i of range(3)) req = req.attach('files', kib(400), { filename: `big-${i}.bin` });
  const res = await req;
  warn.mockRestore();
  expect(res.status).toBe(507);
  expect(res.body).toMatchObject({ code: 'ERR_STORE_FULL', error: expect.stringMatching(/file store is full/) });
  expect(await t.db.collection('disk').countDocuments()).toBe(0);
  expect(await storedKeys(dir)).toEqual([]);
  // The space came back: the next upload is stored.
  const next = await request(app)
    .post(`/orders/${hexOf('full')}/assets`)
    .attach('files', kib(10), { filename: 'small.bin' });
  expect(next.status).toBe(201);
  await expectGapless(t.db, 'disk', idOf('full'), 1);
  await expectConsistent(t.db, 'disk', dir);
});

maybe('filling the disk one upload at a time: 201 until 507, then 201 again once space is freed; records and files match throughout', async () => {
  const warn = jest.spyOn(console, 'warn').mockImplementation(() => {});
  const statuses: number[] = [];
  for (let i = 0; i < 30 && !statuses.includes(507); i += 1) {
    const res = await request(app)
      .post(`/orders/${hexOf('fill')}/assets`)
      .attach('files', kib(90), { filename: `f${i}.bin` });
    statuses.push(res.status);
  }
  warn.mockRestore();
  expect(statuses[statuses.length - 1]).toBe(507);
  expect(statuses.slice(0, -1).every((s) => s === 201)).toBe(true);
  const stored = statuses.length - 1;
  expect(stored).toBeGreaterThan(5);
  await expectGapless(t.db, 'disk', idOf('fill'), stored);
  await expectConsistent(t.db, 'disk', dir);
  // The service's own put (bytes in memory) on a full disk: refused, nothing left over.
  await expect(service.uploadAsset(fakeFile('more.bin', 'x'.repeat(200 * 1024)), 'fill', 'svc')).rejects.toMatchObject({ code: 'ENOSPC' });
  await expectConsistent(t.db, 'disk', dir);
  // Space freed (a record and its file deleted together): uploads go on, at the next version.
  const last = await t.db.collection('disk').findOneAndDelete({ orderId: idOf('fill'), version: 1 });
  await fs.rm(path.join(dir, last!.storageKey));
  const again = await request(app)
    .post(`/orders/${hexOf('fill')}/assets`)
    .attach('files', kib(40), { filename: 'again.bin' });
  expect(again.status).toBe(201);
  expect(again.body.assets[0].version).toBe(stored + 1);
  await expectConsistent(t.db, 'disk', dir);
});
