// Idempotency-Key names one request (issue 21 item 7, issue 16 item 6): a
// different request under the same key is 422 and stores nothing; three
// concurrent requests with one key and different bodies store one upload;
// the same key on the upper-case order id is the same request; a duplicate
// in progress gets 409 or the first's answer, never a second copy.
import request from 'supertest';
import { createApp } from '../src/app';
import { expectGapless, range, testDatabase, uri } from '../../../test/support/db';
import { expectConsistent, hexOf, idOf, makeRepository, makeService, storedKeys } from './support/service';
import type { AssetRepositoryPort } from '../src/asset-repository';

let t: any;
const opened: Array<{ repository: AssetRepositoryPort; cleanup: () => Promise<void> }> = [];
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

async function serviceFor(collection: string) {
  const repository = await makeRepository('addon', uri() as string, t.dbName, collection);
  const made = await makeService(repository, t.db, collection);
  opened.push({ repository, cleanup: made.cleanup });
  return { ...made, app: createApp({ service: made.service }) };
}

const send = (app: any, order: string, key: string, body: string, name = 'a.txt') =>
  request(app).post(`/orders/${order}/assets`).set('Idempotency-Key', key).attach('files', Buffer.from(body), { filename: name });

test('same key, another body or name: 422, the first upload untouched, nothing new stored', async () => {
  const { app, dir } = await serviceFor('reuse');
  const order = hexOf('reuse');
  const first = await send(app, order, 'k-1', 'first bytes');
  expect(first.status).toBe(201);
  for (const [body, name] of [
    ['other bytes', 'a.txt'],
    ['first bytes', 'b.txt'],
    ['first bytes!', 'a.txt'],
  ]) {
    const again = await send(app, order, 'k-1', body, name);
    expect([again.status, again.body.code]).toEqual([422, 'ERR_IDEMPOTENCY_KEY_REUSED']);
  }
  const retry = await send(app, order, 'k-1', 'first bytes');
  expect(retry.status).toBe(201);
  expect(retry.body.assets[0]._id).toBe(first.body.assets[0]._id);
  const [doc] = await expectGapless(t.db, 'reuse', idOf('reuse'), 1);
  expect(await storedKeys(dir)).toEqual([doc.storageKey]);
  const bytes = await request(app).get(`/orders/${order}/assets/1`);
  expect(bytes.text).toBe('first bytes');
});

test('three concurrent requests, one key, different bodies: one is stored, the others 422 or 409', async () => {
  const { app, dir } = await serviceFor('race');
  const order = hexOf('race');
  const answers = await Promise.all(range(3).map((i) => send(app, order, 'k-race', `body ${i}`)));
  const statuses = answers.map((r) => r.status).sort();
  expect(statuses.filter((s) => s === 201)).toHaveLength(1);
  for (const s of statuses.filter((s) => s !== 201)) expect([409, 422]).toContain(s);
  const winner = answers.find((r) => r.status === 201)!;
  const [doc] = await expectGapless(t.db, 'race', idOf('race'), 1);
  expect(String(doc._id)).toBe(winner.body.assets[0]._id);
  expect((await request(app).get(`/orders/${order}/assets/1`)).text).toBe(`body ${answers.indexOf(winner) + 1}`); // range() counts from 1;
  await expectConsistent(t.db, 'race', dir);
});

test('the same key on the upper-case order id is the same request: one version', async () => {
  const { app, dir } = await serviceFor('case');
  const lower = hexOf('case');
  const upper = lower.toUpperCase();
  expect(upper).not.toBe(lower);
  const first = await send(app, lower, 'k-case', 'same');
  const second = await send(app, upper, 'k-case', 'same');
  expect([first.status, second.status]).toEqual([201, 201]);
  expect(second.body.assets[0]._id).toBe(first.body.assets[0]._id);
  expect(second.body.assets[0].version).toBe(1);
  await expectGapless(t.db, 'case', idOf('case'), 1);
  await expectConsistent(t.db, 'case', dir);
});

test('concurrent duplicates of one request: each answer is the one upload or 409, and it is stored once', async () => {
  const { app, dir } = await serviceFor('dups');
  const order = hexOf('dups');
  const answers = await Promise.all(range(5).map(() => send(app, order, 'k-dup', 'dup')));
  const ids = new Set(answers.filter((r) => r.status === 201).map((r) => r.body.assets[0]._id));
  expect(ids.size).toBe(1);
  for (const r of answers) expect([201, 409]).toContain(r.status);
  const conflict = answers.find((r) => r.status === 409);
  if (conflict) expect(conflict.headers['retry-after']).toBe('1');
  await expectGapless(t.db, 'dups', idOf('dups'), 1);
  await expectConsistent(t.db, 'dups', dir);
  // Once the first is answered, a retry gets its result.
  const late = await send(app, order, 'k-dup', 'dup');
  expect([late.status, late.body.assets[0]._id]).toEqual([201, [...ids][0]]);
});
