// The Express routes of the example service, over HTTP with supertest,
// against the real server.
import request from 'supertest';
import { createApp } from '../src/app';
import type { Limits } from '../src/limits';
import { testDatabase, expectGapless, range, uri } from '../../../test/support/db';
import { makeRepository, makeService, idOf, hexOf } from './support/service';
import { runWriters } from '../../../test/support/processes';
import type { AssetRepositoryPort } from '../src/asset-repository';

let t: any;
const opened: Array<{ repository: AssetRepositoryPort; cleanup: () => Promise<void> }> = [];

async function appWith(collection: string, addonOptions: Record<string, unknown> = {}, maxFileSize?: number, serverUri = uri() as string, limits: Partial<Limits> = {}) {
  const repository = await makeRepository('addon', serverUri, t.dbName, collection, addonOptions);
  const { service, cleanup } = await makeService(repository, t.db, collection);
  opened.push({ repository, cleanup });
  return createApp({ service, maxFileSize, ...limits });
}

beforeAll(async () => {
  t = await testDatabase(__filename);
});
afterAll(async () => {
  for (const o of opened) {
    await o.repository.close();
    await o.cleanup();
  }
  await t.done();
});

test('POST one file: 201 with v1; GET lists it; GET the version returns the bytes with their type', async () => {
  const app = await appWith('one');
  const post = await request(app)
    .post(`/orders/${hexOf('ord-1')}/assets`)
    .field('uploadedBy', hexOf('alice'))
    .attach('files', Buffer.from('%PDF-1.7 proof'), { filename: 'proof.pdf', contentType: 'application/pdf' });
  expect(post.status).toBe(201);
  expect(post.body.assets).toHaveLength(1);
  expect(post.body.assets[0]).toMatchObject({
    orderId: hexOf('ord-1'),
    fileName: 'proof.pdf',
    version: 1,
    versionLabel: 'v1',
    uploadedBy: hexOf('alice'),
    fileSize: 14,
    status: 'active',
    extension: 'pdf',
  });

  const list = await request(app).get(`/orders/${hexOf('ord-1')}/assets`);
  expect(list.status).toBe(200);
  expect(list.body.assets.map((a: any) => a.versionLabel)).toEqual(['v1']);

  const file = await request(app)
    .get(`/orders/${hexOf('ord-1')}/assets/1`)
    .buffer(true)
    .parse((res, cb) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => cb(null, Buffer.concat(chunks)));
    });
  expect(file.status).toBe(200);
  expect(file.headers['content-type']).toMatch(/^application\/pdf/);
  expect(file.body.toString()).toBe('%PDF-1.7 proof');
});

test('POST several files in one request: each gets its own version, in the order sent; GET lists newest first', async () => {
  const app = await appWith('multi');
  let req = request(app).post(`/orders/${hexOf('ord-m')}/assets`);
  for (const i of range(4)) req = req.attach('files', Buffer.from(`file ${i}`), { filename: `page-${i}.png`, contentType: 'image/png' });
  const post = await req;
  expect(post.status).toBe(201);
  expect(post.body.assets.map((a: any) => [a.fileName, a.version])).toEqual(range(4).map((i) => [`page-${i}.png`, i]));
  const list = await request(app).get(`/orders/${hexOf('ord-m')}/assets`);
  expect(list.body.assets.map((a: any) => a.version)).toEqual([4, 3, 2, 1]);
  await expectGapless(t.db, 'multi', idOf('ord-m'), 4);
});

test('100 concurrent POSTs to one order: all 201, the database holds 1..100', async () => {
  const app = await appWith('hundred', {}, undefined, undefined, { maxUploadsInFlight: 100, maxUploadsPerClient: 100 });
  const server = app.listen(0);
  try {
    const agent = request(server);
    const responses = await Promise.all(
      range(100).map((i) => agent.post(`/orders/${hexOf('hot')}/assets`).attach('files', Buffer.from(`f${i}`), { filename: `f${i}.txt`, contentType: 'text/plain' })),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(100).fill(201));
    const versions = responses.map((r) => r.body.assets[0].version).sort((a, b) => a - b);
    expect(versions).toEqual(range(100));
  } finally {
    server.close();
  }
  await expectGapless(t.db, 'hundred', idOf('hot'), 100);
});

describe('errors map to HTTP', () => {
  test('no file: 400', async () => {
    const app = await appWith('errors');
    const res = await request(app)
      .post(`/orders/${hexOf('ord-e')}/assets`)
      .field('uploadedBy', 'x');
    expect(res.status).toBe(400);
    expect(res.body.error).toMatch(/no file/);
  });

  test('a blank order id, or one that is not an ObjectId: 400 naming the field, nothing written', async () => {
    const app = await appWith('errors');
    for (const order of ['%20%20', 'ord-1', '%7B%22%24ne%22%3Anull%7D']) {
      const res = await request(app).post(`/orders/${order}/assets`).attach('files', Buffer.from('x'), { filename: 'x.txt' });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ code: 'ERR_INVALID_ID', field: 'orderId' });
    }
    expect(await t.db.collection('errors').countDocuments()).toBe(0);
  });

  test('unknown order or version: 404', async () => {
    const app = await appWith('errors');
    expect((await request(app).get(`/orders/${hexOf('nobody')}/assets/1`)).status).toBe(404);
    expect((await request(app).get(`/orders/${hexOf('nobody')}/assets/v0`)).status).toBe(404);
    expect((await request(app).get(`/orders/${hexOf('nobody')}/assets/abc`)).status).toBe(404);
    const list = await request(app).get(`/orders/${hexOf('nobody')}/assets`);
    expect(list.status).toBe(200);
    expect(list.body.assets).toEqual([]);
  });

  test('a file over the size limit: 413, nothing written', async () => {
    const app = await appWith('limits', {}, 1024);
    const res = await request(app)
      .post(`/orders/${hexOf('ord-big')}/assets`)
      .attach('files', Buffer.alloc(2048), { filename: 'big.bin' });
    expect(res.status).toBe(413);
    expect(await t.db.collection('limits').countDocuments()).toBe(0);
  });

  test('database unreachable: 503 with Retry-After', async () => {
    const app = await appWith('down', {}, undefined, 'mongodb://127.0.0.1:1/x?serverSelectionTimeoutMS=300');
    const res = await request(app)
      .post(`/orders/${hexOf('ord-d')}/assets`)
      .attach('files', Buffer.from('x'), { filename: 'x.txt' });
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBeDefined();
    expect(res.body.error).toMatch(/database is unavailable/);
    expect(JSON.stringify(res.body)).not.toMatch(/127\.0\.0\.1|:1\b/); // no address for the client
  });

  test('retries exhausted against another writer: 409 with Retry-After, and no gap', async () => {
    // No coalescing, no memory, no retries: a lost race is final, so real
    // collisions with the second process surface as 409.
    const app = await appWith('conflict', { coalesce: false, maxRetries: 0 }, undefined, undefined, { maxUploadsInFlight: 30, maxUploadsPerClient: 30 });
    const server = app.listen(0);
    let statuses: number[] = [];
    let other: any;
    try {
      const agent = request(server);
      const burst = () => Promise.all(range(30).map((i) => agent.post(`/orders/${hexOf('contested')}/assets`).attach('files', Buffer.from(`f${i}`), { filename: `f${i}.txt` })));
      const job = {
        uri: uri(),
        dbName: t.dbName,
        collection: 'conflict',
        orderId: hexOf('contested'),
        objectIdOrder: true,
        count: 30,
        options: { coalesce: false, maxRetries: 0 },
      };
      const [[summary], responses] = (await runWriters([job], burst)) as [any[], request.Response[]];
      other = summary;
      statuses = responses.map((r) => r.status);
      const conflicts = responses.filter((r) => r.status === 409);
      expect(conflicts.length).toBeGreaterThan(0);
      expect(conflicts[0].headers['retry-after']).toBe('1');
      expect(conflicts[0].body.code).toBe(11000);
      expect(conflicts[0].body.error).toContain(`order ObjectId("${hexOf('contested')}") a version after 1 attempts`);
    } finally {
      server.close();
    }
    expect(statuses.every((s) => s === 201 || s === 409)).toBe(true);
    await expectGapless(t.db, 'conflict', idOf('contested'), statuses.filter((s) => s === 201).length + other.ok);
  });
});
