// Bounded memory and records (issue 10, rows 2, 3 and 4): every part of a
// request is capped, files stream to the store, uploads in flight are capped,
// tricklers are cut off, and a listing is paged and projected.
import net from 'net';
import type { AddressInfo } from 'net';
import type { Server } from 'http';
import { promises as fs } from 'fs';
import path from 'path';
import request from 'supertest';
import { createApp } from '../src/app';
import { createServer, listen } from '../src/http-server';
import type { Limits } from '../src/limits';
import { expectGapless, range, testDatabase, uri } from '../../../test/support/db';
import { expectConsistent, makeRepository, makeService, multipart, storedKeys, idOf, hexOf } from './support/service';
import type { AssetRepositoryPort } from '../src/asset-repository';

let t: any;
const opened: Array<{ repository: AssetRepositoryPort; cleanup: () => Promise<void> }> = [];
const servers: Server[] = [];

async function serviceFor(collection: string, limits: Partial<Limits> = {}) {
  const repository = await makeRepository('addon', uri() as string, t.dbName, collection);
  const made = await makeService(repository, t.db, collection);
  opened.push({ repository, cleanup: made.cleanup });
  return { ...made, repository, app: createApp({ service: made.service, ...limits }) };
}

async function serve(app: ReturnType<typeof createApp>, limits: Partial<Limits> = {}) {
  const server = createServer(app, { headersTimeoutMs: 10_000, requestTimeoutMs: 120_000, ...limits });
  servers.push(server);
  await listen(server, 0, '127.0.0.1');
  return (server.address() as AddressInfo).port;
}

beforeAll(async () => {
  t = await testDatabase(__filename);
});
afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
  for (const o of opened) {
    await o.repository.close();
    await o.cleanup();
  }
  await t.done();
});

describe('row 2: a request cannot grow without bound', () => {
  test('too many fields, a huge field, a huge field name: refused, nothing stored, the service carries on', async () => {
    const { app, dir } = await serviceFor('fields');
    const file = { name: 'files', filename: 'a.pdf', value: 'pdf', type: 'application/pdf' };
    const cases = [
      { parts: [file, ...range(50).map((i) => ({ name: `f${i}`, value: 'x'.repeat(1024) }))], status: 413, code: 'LIMIT_FIELD_COUNT' },
      { parts: [file, { name: 'note', value: 'x'.repeat(1024 * 1024) }], status: 400, code: 'LIMIT_FIELD_VALUE' },
      { parts: [file, { name: 'n'.repeat(500), value: 'x' }], status: 400, code: 'LIMIT_FIELD_KEY' },
      { parts: range(25).map((i) => ({ ...file, filename: `${i}.pdf` })), status: 413, code: 'LIMIT_FILE_COUNT' },
    ];
    for (const c of cases) {
      const { body, contentType } = multipart(c.parts);
      const res = await request(app)
        .post(`/orders/${hexOf('fields')}/assets`)
        .set('Content-Type', contentType)
        .send(body);
      expect([res.status, res.body.code]).toEqual([c.status, c.code]);
    }
    expect(await t.db.collection('fields').countDocuments()).toBe(0);
    expect(await storedKeys(dir)).toEqual([]); // the file streamed before the refusal was removed
    const ok = await request(app)
      .post(`/orders/${hexOf('fields')}/assets`)
      .attach('files', Buffer.from('fine'), { filename: 'ok.pdf' });
    expect(ok.status).toBe(201);
    await expectGapless(t.db, 'fields', idOf('fields'), 1);
    await expectConsistent(t.db, 'fields', dir);
  });
});

describe('row 3: records stay small and the listing cannot fail', () => {
  test('uploadedBy of 1 MiB, over 200 characters, or not a user id, after 20 files: 400, no record, no file', async () => {
    const { app, dir } = await serviceFor('records');
    for (const [uploadedBy, code] of [
      ['x'.repeat(1024 * 1024), 'LIMIT_FIELD_VALUE'],
      ['é'.repeat(201), 'ERR_UPLOADED_BY_TOO_LONG'],
      ['日'.repeat(200), 'ERR_INVALID_ID'],
    ]) {
      let req = request(app).post(`/orders/${hexOf('big')}/assets`);
      for (const i of range(20)) req = req.attach('files', Buffer.alloc(0), { filename: `empty-${i}.txt` });
      const res = await req.field('uploadedBy', uploadedBy);
      expect([res.status, res.body.code]).toEqual([400, code]);
    }
    expect(await t.db.collection('records').countDocuments()).toBe(0);
    expect(await storedKeys(dir)).toEqual([]);
    const ok = await request(app)
      .post(`/orders/${hexOf('big')}/assets`)
      .attach('files', Buffer.from('x'), { filename: 'x.txt' })
      .field('uploadedBy', hexOf('alice'));
    expect(ok.status).toBe(201);
    expect((await t.db.collection('records').findOne({ orderId: idOf('big') })).uploadedBy).toEqual(idOf('alice'));
    await expectConsistent(t.db, 'records', dir);
  });

  test('an order of 130 versions, 30 of them carrying 1 MiB in a field the listing does not show: paged, projected, every version once', async () => {
    const { app, repository } = await serviceFor('listing', { answerTimeoutMs: 60_000 }); // 30 MiB of records on a loaded machine: not the bound under test here
    const data = (i: number, fileUrl: string) => ({
      orderId: idOf('fat'),
      uploadedBy: idOf('bob'),
      fileName: `f${i}.pdf`,
      fileUrl,
      mimeType: 'application/pdf',
      fileSize: i,
      storageKey: `k${i}`,
    });
    await Promise.all(range(30).map((i) => repository.createWithAtomicVersion(data(i, `/files/${'u'.repeat(1024 * 1024)}`))));
    await Promise.all(range(100, 31).map((i) => repository.createWithAtomicVersion(data(i, `/files/k${i}`))));

    const seen: number[] = [];
    let after: number | null = null;
    for (let page = 0; page < 10 && (page === 0 || after !== null); page += 1) {
      const res: request.Response = await request(app).get(`/orders/${hexOf('fat')}/assets${after ? `?after=${after}` : ''}`);
      expect(res.status).toBe(200);
      expect(res.text.length).toBeLessThan(20_000); // 50 summaries, not 30 MiB
      expect(res.body.assets.length).toBeLessThanOrEqual(50);
      for (const a of res.body.assets) expect(Object.keys(a).sort()).toEqual(['createdAt', 'fileName', 'fileSize', 'mimeType', 'version', 'versionLabel']);
      seen.push(...res.body.assets.map((a: any) => a.version));
      after = res.body.next;
    }
    expect(after).toBeNull();
    expect(seen).toEqual(range(130).reverse());
    const small = await request(app).get(`/orders/${hexOf('fat')}/assets?limit=7&after=10`);
    expect(small.body.assets.map((a: any) => a.version)).toEqual([9, 8, 7, 6, 5, 4, 3]);
    expect(small.body.next).toBe(3);
    for (const bad of ['limit=0', 'limit=501', 'limit=abc', 'after=-1', 'after=1e3']) {
      expect((await request(app).get(`/orders/${hexOf('fat')}/assets?${bad}`)).status).toBe(400);
    }
  });
});

/** A request sent by hand over a socket, to be held open half-sent. */
function rawRequest(port: number, head: string, body: Buffer = Buffer.alloc(0)) {
  const socket = net.connect(port, '127.0.0.1');
  let response = '';
  socket.on('data', (d) => (response += d));
  socket.on('error', () => {});
  const closed = new Promise<string>((resolve) => socket.on('close', () => resolve(response)));
  socket.write(head);
  if (body.length) socket.write(body);
  return { socket, closed };
}

describe('row 4: memory and connections are bounded', () => {
  test('files reach the store while the request is still arriving; beyond the in-flight cap, 503 with Retry-After at once', async () => {
    const { app, dir } = await serviceFor('inflight', { maxUploadsInFlight: 2 });
    const port = await serve(app);
    const boundary = 'zzBOUNDARYzz';
    const first = multipart([{ name: 'files', filename: 'a.bin', value: Buffer.alloc(512 * 1024, 1) }], boundary).body;
    const partOne = first.subarray(0, first.length - `--${boundary}--\r\n`.length); // a whole file, then nothing
    const head = `POST /orders/${hexOf('held')}/assets HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nTransfer-Encoding: chunked\r\n\r\n`;
    const chunk = (b: Buffer) => Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')]);
    const held = [rawRequest(port, head, chunk(partOne)), rawRequest(port, head, chunk(partOne))];

    // Streamed: both files are in the store, whole, before their requests end.
    for (let i = 0; i < 100; i += 1) {
      const keys = await storedKeys(dir);
      const sizes = await Promise.all(keys.map((k) => fs.stat(path.join(dir, k)).then((s) => s.size)));
      if (sizes.length === 2 && sizes.every((s) => s === 512 * 1024)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect((await storedKeys(dir)).length).toBe(2);
    expect(await t.db.collection('inflight').countDocuments()).toBe(0);

    // "At once": answered while both held uploads are still in flight (they
    // cannot end before the test sends their last bytes), not after one ends.
    let heldEnded = false;
    void Promise.race(held.map((h) => h.closed)).then(() => {
      heldEnded = true;
    });
    const third = await request(`http://127.0.0.1:${port}`)
      .post(`/orders/${hexOf('held')}/assets`)
      .attach('files', Buffer.alloc(1024), { filename: 'c.bin' });
    expect(third.status).toBe(503);
    expect(third.headers['retry-after']).toBe('2');
    expect(third.body.code).toBe('ERR_TOO_MANY_UPLOADS');
    expect(heldEnded).toBe(false);

    for (const h of held) h.socket.write(Buffer.concat([chunk(Buffer.from(`--${boundary}--\r\n`)), Buffer.from('0\r\n\r\n')]));
    const answers = await Promise.all(held.map((h) => h.closed));
    for (const a of answers) expect(a).toMatch(/^HTTP\/1\.1 201/);
    await expectGapless(t.db, 'inflight', idOf('held'), 2);
    await expectConsistent(t.db, 'inflight', dir);
    const after = await request(app)
      .post(`/orders/${hexOf('held')}/assets`)
      .attach('files', Buffer.alloc(10), { filename: 'd.bin' });
    expect(after.status).toBe(201); // the cap counts down again
  });

  test('100 clients trickling a byte every 500 ms, in their headers or their body, are all cut off by the timeouts', async () => {
    const { app, dir } = await serviceFor('trickle');
    const port = await serve(app, { headersTimeoutMs: 1000, requestTimeoutMs: 2000 });
    const boundary = 'tt';
    const bodyHead = `POST /orders/${hexOf('slow')}/assets HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: 100000\r\n\r\n--${boundary}\r\nContent-Disposition: form-data; name="files"; filename="s.bin"\r\n\r\n`;
    const clients = range(100).map((i) => rawRequest(port, i % 2 ? `POST /orders/${hexOf('slow')}/assets HTTP/1.1\r\nHo` : bodyHead));
    const closedAt: number[] = [];
    const start = Date.now();
    clients.forEach((c, i) => c.closed.then(() => (closedAt[i] = Date.now() - start)));
    const timer = setInterval(() => clients.forEach((c) => c.socket.writable && c.socket.write('x')), 500);
    let deadline: NodeJS.Timeout | undefined;
    try {
      await Promise.race([Promise.all(clients.map((c) => c.closed)), new Promise((r) => (deadline = setTimeout(r, 10_000)))]);
    } finally {
      clearInterval(timer);
      clearTimeout(deadline);
      for (const c of clients) c.socket.destroy();
    }
    expect(closedAt.filter((ms) => ms !== undefined)).toHaveLength(100);
    expect(Math.max(...closedAt)).toBeLessThan(5000);
    await new Promise((r) => setTimeout(r, 200)); // the aborted writes finish removing their partial files
    expect(await t.db.collection('trickle').countDocuments()).toBe(0);
    expect(await storedKeys(dir)).toEqual([]);
  });
});
