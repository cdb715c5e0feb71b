// The service when its database fails (issue 10, rows 7, 8 and 10): a 503
// within seconds that names no address, no second version for a client that
// retries with the same Idempotency-Key, and no stored asset left pointing
// at bytes removed on an unknown outcome. Runs its own FerretDB to kill.
import os from 'os';
import path from 'path';
import { promises as fs } from 'fs';
import request from 'supertest';
import { MongoClient } from 'mongodb';
import { createApp } from '../src/app';
import { withBounds, withFastFailure } from '../src/database';
import { expectGapless, testDatabase, uri } from '../../../test/support/db';
import { expectConsistent, makeRepository, makeService, markedKeys, hexOf, idOf } from './support/service';

import { startFerretDB } from '../../../scripts/ferretdb';

import { ownFrontEnd } from '../../../test/support/backend';

import { startFailProxy } from '../../../test/support/fail-proxy';

let t: any;
const toClose: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const close of toClose.reverse()) await close().catch(() => {});
  if (t) await t.done();
});

test('withBounds adds a 4 s socket timeout as well, keeping one already there', () => {
  expect(withBounds('mongodb://h:1/db')).toBe('mongodb://h:1/db?serverSelectionTimeoutMS=3000&socketTimeoutMS=4000');
  expect(withBounds('mongodb://h:1/db?socketTimeoutMS=100')).toBe('mongodb://h:1/db?socketTimeoutMS=100&serverSelectionTimeoutMS=3000');
});

test('withFastFailure adds a 3 s server selection timeout to any URI form, and keeps one already there', () => {
  expect(withFastFailure('mongodb://127.0.0.1:27017')).toBe('mongodb://127.0.0.1:27017/?serverSelectionTimeoutMS=3000');
  expect(withFastFailure('mongodb://h:1/db')).toBe('mongodb://h:1/db?serverSelectionTimeoutMS=3000');
  expect(withFastFailure('mongodb://a,b/db?replicaSet=rs')).toBe('mongodb://a,b/db?replicaSet=rs&serverSelectionTimeoutMS=3000');
  expect(withFastFailure('mongodb+srv://cluster.example')).toBe('mongodb+srv://cluster.example/?serverSelectionTimeoutMS=3000');
  expect(withFastFailure('mongodb://h/db?serverSelectionTimeoutMS=500')).toBe('mongodb://h/db?serverSelectionTimeoutMS=500');
});

describe('the database down', () => {
  let server: any;
  let dataDir: string;
  let app: ReturnType<typeof createApp>;
  let dir: string;
  let client: MongoClient;
  let own: object; // this server's backend options, the same on every restart

  beforeAll(async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'service-db-'));
    toClose.push(() => fs.rm(dataDir, { recursive: true, force: true }));
    own = ownFrontEnd('svcdb');
    server = await startFerretDB({ ...own, dataDir });
    toClose.push(() => server.stop());
    // As server.ts builds them: one URI with the short server selection timeout, for both connections.
    const serviceUri = withFastFailure(server.uri);
    expect(serviceUri).toMatch(/serverSelectionTimeoutMS=3000/);
    const repository = await makeRepository('addon', serviceUri, 'svc', 'assets');
    client = await MongoClient.connect(serviceUri);
    toClose.push(
      () => client.close(),
      () => repository.close(),
    );
    const made = await makeService(repository, client.db('svc'), 'assets');
    dir = made.dir;
    toClose.push(made.cleanup);
    app = createApp({ service: made.service });
  });

  test('rows 7 and 10: uploads and listings answer 503 within seconds, saying the database is unavailable, not where it is', async () => {
    expect(
      (
        await request(app)
          .post(`/orders/${hexOf('o')}/assets`)
          .attach('files', Buffer.from('one'), { filename: 'one.txt' })
      ).status,
    ).toBe(201);
    await server.stop('SIGKILL');
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      for (const send of [
        () =>
          request(app)
            .post(`/orders/${hexOf('o')}/assets`)
            .attach('files', Buffer.from('two'), { filename: 'two.txt' }),
        () => request(app).get(`/orders/${hexOf('o')}/assets`),
        () => request(app).get(`/orders/${hexOf('o')}/assets/1`),
      ]) {
        const started = Date.now();
        const res = await send();
        expect(Date.now() - started).toBeLessThan(6000); // 30 s before the timeout was set
        expect(res.status).toBe(503);
        expect(res.headers['retry-after']).toBe('5');
        expect(res.body).toMatchObject({ code: 'ERR_DATABASE_UNAVAILABLE', error: expect.stringMatching(/database is unavailable/) });
        expect(JSON.stringify(res.body)).not.toContain(String(server.port));
        expect(JSON.stringify(res.body)).not.toContain('127.0.0.1');
      }
      expect(warn).toHaveBeenCalled(); // the operator's log line keeps the detail
    } finally {
      warn.mockRestore();
    }
    server = await startFerretDB({ ...own, dataDir, port: server.port });
    // The refused upload left no bytes: one record, one file.
    await expectGapless(client.db('svc'), 'assets', idOf('o'), 1);
    await expectConsistent(client.db('svc'), 'assets', dir);
  });

  test('row 8: a retry with the same Idempotency-Key after a 503 stores the file once, as the next version', async () => {
    await server.stop('SIGKILL');
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => {});
    const send = () =>
      request(app)
        .post(`/orders/${hexOf('o')}/assets`)
        .set('Idempotency-Key', 'retry-1')
        .attach('files', Buffer.from('three'), { filename: 'three.txt' });
    try {
      expect((await send()).status).toBe(503);
    } finally {
      warn.mockRestore();
    }
    server = await startFerretDB({ ...own, dataDir, port: server.port });
    let retry = await send();
    for (let i = 0; i < 20 && retry.status === 503; i += 1) retry = await send(); // the pool may take a moment to see it back
    expect(retry.status).toBe(201);
    expect(retry.body.assets[0]).toMatchObject({ version: 2, fileName: 'three.txt' });
    const docs = await expectGapless(client.db('svc'), 'assets', idOf('o'), 2);
    expect(docs[1].storageKey).toBe(String(docs[1]._id)); // named after the upload's _id
    await expectConsistent(client.db('svc'), 'assets', dir);
  });
});

describe('a committed upload whose answer was lost', () => {
  let app: ReturnType<typeof createApp>;
  let dir: string;
  let proxy: any;
  // The real repository, through a proxy that withholds the insert's reply
  // and then takes the database away for longer than the repository's
  // recovery budget: the upload commits, and its caller hears only
  // OutcomeUnknownError.
  beforeAll(async () => {
    t = await testDatabase(__filename);
    proxy = await startFailProxy({ upstreamPort: Number(new URL(uri() as string).port || 27017) });
    const proxied = `mongodb://127.0.0.1:${proxy.port}/?serverSelectionTimeoutMS=500`;
    const repository = await makeRepository('addon', proxied, t.dbName, 'lost', { recoveryTimeMS: 300 });
    const made = await makeService(repository, t.db, 'lost');
    dir = made.dir;
    toClose.push(
      made.cleanup,
      () => repository.close(),
      () => proxy.close(),
    );
    app = createApp({ service: made.service });
  });

  const send = () =>
    request(app)
      .post(`/orders/${hexOf('lost')}/assets`)
      .set('Idempotency-Key', 'k-1')
      .attach('files', Buffer.from('proof'), { filename: 'proof.pdf', contentType: 'application/pdf' });

  test('an unknown outcome answers 503 asking for a retry with the same key, and keeps the bytes the record points at', async () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => {});
    proxy.configureFailPoint({ mode: { times: 1 }, data: { failCommands: ['insert'], stallReply: true } });
    const answer = send().then((r) => r); // supertest sends only once asked for the result
    while (proxy.stalledConnections === 0) await new Promise((r) => setTimeout(r, 5));
    await proxy.startOutage({ refuse: true });
    const res = await answer;
    await proxy.endOutage();
    warn.mockRestore();
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBeDefined();
    expect(res.body.code).toBe('ERR_ASSET_OUTCOME_UNKNOWN');
    expect(res.body.error).toMatch(/same Idempotency-Key/);
    // It did commit: the record is there, and so are its bytes.
    const [doc] = await expectGapless(t.db, 'lost', idOf('lost'), 1);
    expect(await expectConsistent(t.db, 'lost', dir)).toEqual([doc.storageKey]);
    // Kept with a marker saying why (issue 21 item 6): the orphan sweep's grace period applies to it.
    expect(await markedKeys(dir)).toEqual([doc.storageKey]);
    expect(res.body.error).toMatch(/list the order's versions/); // how a request sent without a key settles it
  });

  test('the retry with the same key gets the first result: the same version, one record, one file', async () => {
    const first = await t.db.collection('lost').findOne({ orderId: idOf('lost') });
    for (let i = 0; i < 2; i += 1) {
      const res = await send();
      expect(res.status).toBe(201);
      expect(res.body.assets).toHaveLength(1);
      expect(res.body.assets[0]).toMatchObject({ version: 1, _id: String(first._id), storageKey: first.storageKey });
    }
    await expectGapless(t.db, 'lost', idOf('lost'), 1);
    await expectConsistent(t.db, 'lost', dir);
    expect(await markedKeys(dir)).toEqual([]); // settled: the marker goes
    const bytes = await request(app).get(`/orders/${hexOf('lost')}/assets/1`);
    expect(bytes.status).toBe(200);
  });
});
