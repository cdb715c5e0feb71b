// The smaller findings of issue 21 (item 9): uploadedBy sent twice or as an
// object is a 400; a version is `N` or `vN`, no alias; 404s do not echo the
// request; the page has a CSP and may not be framed; the 201's fileUrl
// answers; a right-to-left override never reaches a download name.
import request from 'supertest';
import { createApp } from '../src/app';
import { expectGapless, testDatabase, uri } from '../../../test/support/db';
import { expectConsistent, hexOf, idOf, makeRepository, makeService, multipart, storedKeys } from './support/service';
import type { AssetRepositoryPort } from '../src/asset-repository';

let t: any;
let repository: AssetRepositoryPort;
let app: ReturnType<typeof createApp>;
let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  t = await testDatabase(__filename);
  repository = await makeRepository('addon', uri() as string, t.dbName, 'small');
  const made = await makeService(repository, t.db, 'small');
  ({ dir, cleanup } = made);
  app = createApp({ service: made.service });
});
afterAll(async () => {
  await repository.close();
  await cleanup();
  await t.done();
});

test('uploadedBy twice, or as uploadedBy[x]: 400 naming it, no record, no file', async () => {
  const file = { name: 'files', filename: 'a.pdf', value: 'pdf', type: 'application/pdf' };
  for (const fields of [
    [
      { name: 'uploadedBy', value: hexOf('alice') },
      { name: 'uploadedBy', value: hexOf('bob') },
    ],
    [{ name: 'uploadedBy[x]', value: hexOf('alice') }],
  ]) {
    const { body, contentType } = multipart([file, ...fields]);
    const res = await request(app)
      .post(`/orders/${hexOf('by')}/assets`)
      .set('Content-Type', contentType)
      .send(body);
    expect([res.status, res.body.code]).toEqual([400, 'ERR_UPLOADED_BY']);
    expect(res.body.error).toMatch(/uploadedBy/);
  }
  expect(await t.db.collection('small').countDocuments({ orderId: idOf('by') })).toBe(0);
  expect(await storedKeys(dir)).toEqual([]);
});

test('a version is N or vN: aliases are 404, and no 404 echoes the request', async () => {
  const order = hexOf('versions');
  const post = await request(app).post(`/orders/${order}/assets`).attach('files', Buffer.from('one'), { filename: 'one.txt' });
  expect(post.status).toBe(201);
  for (const ok of ['1', 'v1']) expect((await request(app).get(`/orders/${order}/assets/${ok}`)).status).toBe(200);
  for (const alias of ['0x1', '1e0', '+1', '1.0', '01', 'v01', ' 1', '1 ', 'V1']) {
    const res = await request(app).get(`/orders/${order}/assets/${encodeURIComponent(alias)}`);
    expect([alias, res.status]).toEqual([alias, 404]);
  }
  const probe = '<script>alert(1)</script>';
  for (const path of [`/orders/${order}/assets/${encodeURIComponent(probe)}`, `/orders/${order}/assets/99`, `/${encodeURIComponent(probe)}`, '/no/such/route']) {
    const res = await request(app).get(path);
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.text).not.toMatch(/script|alert|99|no\/such|Cannot GET/);
  }
});

test('the page: a CSP with frame-ancestors, X-Frame-Options, nosniff', async () => {
  const res = await request(app).get('/');
  expect(res.status).toBe(200);
  expect(res.headers['content-security-policy']).toMatch(/default-src 'none'/);
  expect(res.headers['content-security-policy']).toMatch(/frame-ancestors 'none'/);
  expect(res.headers['content-security-policy']).toMatch(/script-src 'sha256-[A-Za-z0-9+/=]+'/);
  expect(res.headers['x-frame-options']).toBe('DENY');
  expect(res.headers['x-content-type-options']).toBe('nosniff');
});

test('the 201 fileUrl answers with the bytes', async () => {
  const post = await request(app)
    .post(`/orders/${hexOf('url')}/assets`)
    .attach('files', Buffer.from('here'), { filename: 'here.txt' });
  expect(post.status).toBe(201);
  const url = post.body.assets[0].fileUrl;
  expect(url).toBe(`/orders/${hexOf('url')}/assets/1`);
  const got = await request(app).get(url);
  expect([got.status, got.text]).toEqual([200, 'here']);
});

test('a file name with a right-to-left override is stored as sent and never offered as the download name', async () => {
  const name = 'invoice\u202Efdp.exe';
  const post = await request(app)
    .post(`/orders/${hexOf('rtl')}/assets`)
    .attach('files', Buffer.from('MZ'), { filename: name, contentType: 'application/octet-stream' });
  expect(post.status).toBe(201);
  const [doc] = await expectGapless(t.db, 'small', idOf('rtl'), 1);
  expect(doc.fileName).toBe(name);
  const res = await request(app).get(`/orders/${hexOf('rtl')}/assets/1`);
  const header = res.headers['content-disposition'];
  expect(header).toBe('attachment; filename="invoice_fdp.exe"');
  expect(decodeURIComponent(header)).not.toMatch(/[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]/);
  await expectConsistent(t.db, 'small', dir);
});
