'use strict';

// How uploads wait, form batches, fail fast and close, without a server: a
// stand-in for the addon's repository answers each batch when the test says
// so, storing every upload as { _id: its name }.
const { BSON } = require('bson');
const native = require('../../lib/native');
const { UploadQueue } = require('../../lib/upload_queue');
const { fieldPlan } = require('../../lib/asset_input');
const { ConnectionError, RepositoryClosedError } = require('../../lib/errors');

const L = native.batchLayout;
const SIZE = 100; // bytes per upload here

function harness({ maxBatches = 1, maxBatchSize = 1000, maxBatchBytes = 1e9, coalesce = true } = {}) {
  const sent = [];
  const closed = [];
  const repository = {
    insertBatch(bytes, ends) {
      const names = [];
      let start = 0;
      for (const end of ends) {
        names.push(bytes.subarray(start, end).toString().trim());
        start = end;
      }
      return new Promise((resolve) => {
        sent.push({
          // One name per job: a group's uploads share theirs.
          names: names.filter((n, i) => i === 0 || n !== names[i - 1] || !n.includes('group')),
          /** Answers the batch: every upload stored, or `error` for each. */
          done(error) {
            const items = new Float64Array(names.length * L.fields);
            const docs = names.map((n) => BSON.serialize({ _id: n }));
            let end = 0;
            docs.forEach((d, i) => (items[i * L.fields + L.docEnd] = end += d.length));
            resolve({ items, docs: Buffer.concat(docs), errors: error ? names.map(() => error) : undefined });
          },
        });
      });
    },
    close: async () => closed.push(true),
  };
  const queue = new UploadQueue({
    options: { maxBatchSize, coalesce, maxRetries: 0, recoveryTimeMS: 0 },
    fields: fieldPlan({ orderId: 'orderId', fileName: 'fileName', version: 'version', versionLabel: 'versionLabel' }),
    nativeRepository: () => repository,
    ready: () => Promise.resolve(),
    maxBatches,
    maxBatchBytes,
  });
  const upload = (name) => ({ bytes: Buffer.from(name.padEnd(SIZE)), view: null });
  const answers = [];
  const push = (key, name, count = 1) => {
    const p =
      count === 1
        ? queue.add(key, key, upload(name), undefined)
        : queue.addGroup(
            key,
            key,
            Array.from({ length: count }, () => upload(name).bytes),
            Array(count).fill(undefined),
          );
    answers.push(
      p.then(
        (v) => ({ name, value: v }),
        (reason) => ({ name, reason }),
      ),
    );
  };
  // The batch goes out after the index is ensured (a promise hop), and a
  // finished one gives its slot back on the loop's next turn.
  const settle = async () => {
    for (let turn = 0; turn < 2; turn++) await new Promise(setImmediate);
  };
  const finish = async (i, error) => {
    await settle();
    sent[i].done(error);
    await settle();
  };
  return { queue, sent, closed, push, finish, settle, answers };
}

test('a lone upload goes at once, alone; what waits meanwhile goes together, orders in arrival order, each order in call order', async () => {
  const h = harness();
  h.push('a', 'a1');
  await h.settle();
  expect(h.sent.map((b) => b.names)).toEqual([['a1']]);
  h.push('b', 'b1');
  h.push('a', 'a2');
  h.push('c', 'c1');
  h.push('b', 'b2');
  expect(h.queue.queued).toBe(4);
  await h.finish(0);
  expect(h.sent[1].names).toEqual(['b1', 'b2', 'a2', 'c1']);
  expect(h.queue.queued).toBe(0);
  await h.finish(1);
  expect((await Promise.all(h.answers)).map((a) => a.value._id)).toEqual(['a1', 'b1', 'a2', 'c1', 'b2']);
});

test('an order is never in two batches at once', async () => {
  const h = harness({ maxBatches: 2 });
  h.push('a', 'a1');
  h.push('a', 'a2'); // a is busy: waits, although a slot is free
  h.push('b', 'b1'); // b is not: takes the free slot, alone
  await h.settle();
  expect(h.sent.map((b) => b.names)).toEqual([['a1'], ['b1']]);
  await h.finish(1);
  expect(h.sent).toHaveLength(2);
  await h.finish(0);
  expect(h.sent[2].names).toEqual(['a2']);
});

test('batches stop at maxBatchSize, and a group larger than that goes alone, unsplit', async () => {
  const h = harness({ maxBatchSize: 3 });
  h.push('x', 'x0');
  h.push('a', 'a-group', 2);
  h.push('b', 'b-group', 2);
  h.push('c', 'c-group', 5);
  await h.finish(0);
  expect(h.sent[1].names).toEqual(['a-group']);
  await h.finish(1);
  expect(h.sent[2].names).toEqual(['b-group']);
  await h.finish(2);
  expect(h.sent[3].names).toEqual(['c-group']);
  await h.finish(3);
  const group = (await Promise.all(h.answers))[3].value;
  expect(group.map((r) => r.status)).toEqual(Array(5).fill('fulfilled'));
});

test('fail-fast: a connection failure fails what waited behind it at once, never sent; later uploads are sent', async () => {
  const h = harness();
  h.push('a', 'a1');
  h.push('b', 'b1');
  h.push('c', 'c1');
  await h.settle();
  await h.finish(0, new ConnectionError('server unreachable', { code: 'ERR_ASSET_CONNECTION' }));
  expect(h.sent).toHaveLength(1);
  const answers = await Promise.all(h.answers);
  expect(answers.map((a) => a.reason && a.reason.name)).toEqual(['ConnectionError', 'ConnectionError', 'ConnectionError']);
  expect(h.queue.stats()).toMatchObject({ uploads: 3, failed: 3, batches: 1, queued: 0 });
  h.push('d', 'd1');
  await h.settle();
  expect(h.sent[1].names).toEqual(['d1']);
});

test('callers answered by a batch queue again before its slot is free, and go together in the next one', async () => {
  const h = harness({ maxBatches: 1 });
  h.push('a', 'a1');
  h.push('b', 'b1');
  await h.settle();
  h.sent[0].done();
  // As a caller would: its next upload a few promise hops after the answer.
  await Promise.resolve()
    .then(() => Promise.resolve())
    .then(() => h.push('c', 'c1'));
  await h.settle();
  expect(h.sent.map((b) => b.names)).toEqual([['a1'], ['b1', 'c1']]);
});

test('coalesce: false sends every call as a batch of its own, in call order, one order in several batches at once', async () => {
  const h = harness({ coalesce: false, maxBatches: 2 });
  h.push('a', 'a1');
  h.push('a', 'a2');
  h.push('b', 'b1');
  await h.settle();
  expect(h.sent.map((b) => b.names)).toEqual([['a1'], ['a2']]);
  await h.finish(0);
  expect(h.sent.map((b) => b.names)).toEqual([['a1'], ['a2'], ['b1']]);
});

test('a batch stays under maxBatchBytes; an upload or group bigger than that goes alone', async () => {
  const h = harness({ maxBatchBytes: 250 }); // each upload is 100 bytes here
  h.push('a', 'a1');
  for (const key of ['b', 'c', 'd', 'e']) h.push(key, `${key}1`);
  h.push('f', 'f-group', 5);
  await h.finish(0);
  expect(h.sent[1].names).toEqual(['b1', 'c1']);
  await h.finish(1);
  expect(h.sent[2].names).toEqual(['d1', 'e1']);
  await h.finish(2);
  expect(h.sent[3].names).toEqual(['f-group']);
});

test("close refuses new calls, waits for every accepted upload and tracked call, then closes the addon's repository once", async () => {
  const h = harness();
  h.push('a', 'a1');
  h.push('b', 'b1');
  let release;
  h.queue.track(new Promise((resolve) => (release = resolve)));
  await h.settle();
  const closing = h.queue.close();
  expect(h.queue.close()).toBe(closing);
  expect(() => h.queue.assertOpen()).toThrow(RepositoryClosedError);
  await h.finish(0);
  await h.finish(1);
  expect(h.closed).toHaveLength(0); // the tracked call is still pending
  release();
  await closing;
  expect(h.closed).toHaveLength(1);
  expect((await Promise.all(h.answers)).map((a) => a.value._id)).toEqual(['a1', 'b1']);
});
