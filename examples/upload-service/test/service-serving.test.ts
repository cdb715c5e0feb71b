// How the service serves what anyone uploaded (issue 10, rows 1 and 11):
// script-capable types are downloads with nosniff and a sandboxing CSP, and
// names of any kind reach the client intact through RFC 6266 / 5987.
import request from 'supertest';
import { createApp } from '../src/app';
import { contentDisposition } from '../src/file-response';
import { testDatabase, uri } from '../../../test/support/db';
import { expectConsistent, makeRepository, makeService, idOf, hexOf } from './support/service';
import type { AssetRepositoryPort } from '../src/asset-repository';

let t: any;
let repository: AssetRepositoryPort;
let app: ReturnType<typeof createApp>;
let dir: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  t = await testDatabase(__filename);
  repository = await makeRepository('addon', uri() as string, t.dbName, 'serving');
  const made = await makeService(repository, t.db, 'serving');
  ({ dir, cleanup } = made);
  app = createApp({ service: made.service });
});
afterAll(async () => {
  await repository.close();
  await cleanup();
  await t.done();
});

const bytes = (req: request.Test) =>
  req.buffer(true).parse((res, cb) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => cb(null, Buffer.concat(chunks)));
  });

/** The file name a client reads from Content-Disposition: filename* when present (RFC 6266 section 4.3). */
function nameFrom(header: string): string {
  const star = /filename\*=UTF-8''([^;]+)/i.exec(header);
  if (star) return decodeURIComponent(star[1]);
  return /filename="([^"]*)"/.exec(header)![1];
}

const HTML = '<!doctype html><script>fetch("/orders/victim/assets").then(r => r.text()).then(t => fetch("/steal?" + t))</script>';
const SVG = '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.domain)</script></svg>';

test('row 1: HTML and SVG with script are served as downloads of opaque bytes, with nosniff and a sandboxing CSP', async () => {
  const post = await request(app)
    .post(`/orders/${hexOf('xss')}/assets`)
    .attach('files', Buffer.from(HTML), { filename: 'page.html', contentType: 'text/html' })
    .attach('files', Buffer.from(SVG), { filename: 'logo.svg', contentType: 'image/svg+xml' });
  expect(post.status).toBe(201);

  for (const [version, name, body] of [
    [1, 'page.html', HTML],
    [2, 'logo.svg', SVG],
  ] as const) {
    const res = await bytes(request(app).get(`/orders/${hexOf('xss')}/assets/${version}`));
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/octet-stream');
    expect(res.headers['content-disposition']).toBe(`attachment; filename="${name}"`);
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['content-security-policy']).toMatch(/default-src 'none'.*sandbox/);
    expect(res.body.toString()).toBe(body); // the bytes as uploaded, just not runnable here
  }
  // What the database holds keeps the type the client claimed; only serving changed.
  const docs = await t.db
    .collection('serving')
    .find({ orderId: idOf('xss') })
    .sort({ version: 1 })
    .toArray();
  expect(docs.map((d: any) => [d.fileName, d.mimeType])).toEqual([
    ['page.html', 'text/html'],
    ['logo.svg', 'image/svg+xml'],
  ]);
  await expectConsistent(t.db, 'serving', dir);
});

test('row 1: passive types stay inline, still with nosniff and the CSP; active ones are bytes however their type is spelled', async () => {
  const post = await request(app)
    .post(`/orders/${hexOf('passive')}/assets`)
    .attach('files', Buffer.from('\x89PNG'), { filename: 'a.png', contentType: 'image/png' })
    .attach('files', Buffer.from('x'), { filename: 'b.html', contentType: 'TEXT/HTML; charset=utf-8' })
    .attach('files', Buffer.from('y'), { filename: 'c.svg', contentType: 'Image/SVG+XML; charset=utf-8' });
  expect(post.status).toBe(201);
  const png = await bytes(request(app).get(`/orders/${hexOf('passive')}/assets/1`));
  expect(png.headers['content-type']).toBe('image/png');
  expect(png.headers['content-disposition']).toBe('inline; filename="a.png"');
  expect(png.headers['x-content-type-options']).toBe('nosniff');
  expect(png.headers['content-security-policy']).toMatch(/sandbox/);
  for (const v of [2, 3]) {
    const res = await bytes(request(app).get(`/orders/${hexOf('passive')}/assets/${v}`));
    expect(res.headers['content-type']).toBe('application/octet-stream');
    expect(res.headers['content-disposition']).toMatch(/^attachment;/);
  }
  expect(await t.db.collection('serving').countDocuments({ orderId: idOf('passive') })).toBe(3);
  await expectConsistent(t.db, 'serving', dir);
});

test('row 11: names with quotes, semicolons, % and non-ASCII go out as filename*=UTF-8 and read back exactly', async () => {
  const names = ['say "hi".pdf', 'semi;colon=1.pdf', '50% off.pdf', 'Ünïcødé-日本.pdf', "it's (1) *.pdf", '😀.pdf'];
  let req = request(app).post(`/orders/${hexOf('names')}/assets`);
  for (const name of names) req = req.attach('files', Buffer.from(name), { filename: name, contentType: 'application/pdf' });
  const post = await req;
  expect(post.status).toBe(201);
  expect(post.body.assets.map((a: any) => a.fileName)).toEqual(names);

  for (const [i, name] of names.entries()) {
    const res = await bytes(request(app).get(`/orders/${hexOf('names')}/assets/${i + 1}`));
    const header = res.headers['content-disposition'];
    const plain = /^[\x20-\x7e]*$/.test(name) && !/["\\%]/.test(name);
    expect(header).toMatch(plain ? /^inline; filename="[\x20-\x7e]*"$/ : /^inline; filename="[\x20-\x7e]*"; filename\*=UTF-8''[A-Za-z0-9%!._~-]+$/);
    expect(header.split('filename="')[1].split('"')[0]).not.toMatch(/["\\%]/); // the ASCII fallback cannot break out of its quotes
    expect(nameFrom(header)).toBe(name);
  }
  const stored = await t.db
    .collection('serving')
    .find({ orderId: idOf('names') })
    .sort({ version: 1 })
    .toArray();
  expect(stored.map((d: any) => d.fileName)).toEqual(names);
});

test('row 11: a name over 255 characters is refused with 400 and nothing is stored, so no header grows past a few kB', async () => {
  const before = await t.db.collection('serving').countDocuments();
  const res = await request(app)
    .post(`/orders/${hexOf('long')}/assets`)
    .attach('files', Buffer.from('x'), { filename: `${'名'.repeat(1700)}.pdf` });
  expect(res.status).toBe(400);
  expect(res.body.code).toBe('ERR_FILE_NAME_TOO_LONG');
  expect(await t.db.collection('serving').countDocuments()).toBe(before);
  await expectConsistent(t.db, 'serving', dir);
  // The longest name allowed, all three-byte characters: the header stays near 2.5 kB.
  expect(contentDisposition('attachment', '名'.repeat(255)).length).toBeLessThan(2600);
});
