// Client errors are answered, not logged (issue 10, row 9): a malformed
// multipart body or a bad percent-encoding is a 400 with no stack in the log,
// and leaves nothing in the database or the file store.
import request from 'supertest';
import { createApp } from '../src/app';
import { testDatabase, uri } from '../../../test/support/db';
import { makeRepository, makeService, multipart, storedKeys, hexOf } from './support/service';
import type { AssetRepositoryPort } from '../src/asset-repository';

let t: any;
let repository: AssetRepositoryPort;
let app: ReturnType<typeof createApp>;
let dir: string;
let cleanup: () => Promise<void>;
let logged: jest.SpyInstance[];

beforeAll(async () => {
  t = await testDatabase(__filename);
  repository = await makeRepository('addon', uri() as string, t.dbName, 'errors');
  const made = await makeService(repository, t.db, 'errors');
  ({ dir, cleanup } = made);
  app = createApp({ service: made.service });
});
beforeEach(() => {
  logged = [jest.spyOn(console, 'error'), jest.spyOn(console, 'warn'), jest.spyOn(console, 'log')];
});
afterEach(() => logged.forEach((s) => s.mockRestore()));
afterAll(async () => {
  await repository.close();
  await cleanup();
  await t.done();
});

const nothingLogged = () => logged.forEach((s) => expect(s).not.toHaveBeenCalled());

async function nothingStored() {
  expect(await t.db.collection('errors').countDocuments()).toBe(0);
  expect(await storedKeys(dir)).toEqual([]);
}

test('row 9: malformed multipart bodies answer 400, unlogged, and leave nothing behind', async () => {
  const whole = multipart([
    { name: 'files', filename: 'a.pdf', value: Buffer.alloc(64 * 1024, 7) },
    { name: 'uploadedBy', value: 'x' },
  ]);
  const bodies: Array<[string, string | Buffer]> = [
    [whole.contentType, whole.body.subarray(0, whole.body.length - 40)], // cut off mid-part, after a file began
    [whole.contentType, 'not multipart at all'],
    ['multipart/form-data', whole.body], // no boundary
    [whole.contentType, '--xBOUNDARYx\r\nContent-Disposition: form-data; name="files"; filename="a"\r\nno blank line'],
  ];
  for (const [type, body] of bodies) {
    const res = await request(app)
      .post(`/orders/${hexOf('m')}/assets`)
      .set('Content-Type', type)
      .send(body);
    expect(res.status).toBe(400);
    expect(res.body.error).not.toMatch(/\n\s+at /); // no stack for the client either
  }
  nothingLogged();
  await nothingStored();
});

test('row 9: a bad percent-encoding in the order id answers 400, unlogged', async () => {
  for (const res of [
    await request(app).post('/orders/%ZZ/assets').attach('files', Buffer.from('x'), { filename: 'x.txt' }),
    await request(app).get('/orders/%ZZ/assets'),
    await request(app).get('/orders/%E0%A4%A/assets/1'),
  ]) {
    expect(res.status).toBe(400);
    expect(res.body.error).toMatch(/bad request/);
  }
  nothingLogged();
  await nothingStored();
});

test('row 9: a malformed Idempotency-Key is a 400 before the body is read', async () => {
  const res = await request(app)
    .post(`/orders/${hexOf('k')}/assets`)
    .set('Idempotency-Key', 'x'.repeat(300))
    .attach('files', Buffer.from('x'), { filename: 'x.txt' });
  expect([res.status, res.body.code]).toEqual([400, 'ERR_IDEMPOTENCY_KEY']);
  nothingLogged();
  await nothingStored();
});
