'use strict';

// How uploads wait and form batches, without a server: `run` stands in for
// the addon and settles each batch when the test says so.
const { OrderQueue } = require('../../lib/order_queue');

function harness({ maxBatches = 1, maxBatchSize = 1000, maxBatchBytes = 1e9, coalesce = true, refuse = () => false } = {}) {
  const sent = [];
  const rejected = [];
  const queue = new OrderQueue({
    maxBatchSize,
    maxBatchBytes,
    maxBatches: () => maxBatches,
    coalesce,
    refuse,
    reject: (job) => rejected.push(job.name),
    run: (jobs) =>
      new Promise((resolve) => {
        sent.push({ names: jobs.map((j) => j.name), done: resolve });
      }),
  });
  const push = (key, name, size = 1) => queue.push({ key, name, count: size, size: size * 100 });
  // A finished batch gives its slot back on the loop's next turn.
  const finish = async (i) => {
    sent[i].done();
    for (let turn = 0; turn < 2; turn++) await new Promise(setImmediate);
  };
  return { queue, sent, rejected, push, finish };
}

test('a lone upload goes at once, alone; what waits meanwhile goes together, orders in arrival order, each order in call order', async () => {
  const h = harness();
  h.push('a', 'a1');
  expect(h.sent.map((b) => b.names)).toEqual([['a1']]);
  h.push('b', 'b1');
  h.push('a', 'a2');
  h.push('c', 'c1');
  h.push('b', 'b2');
  expect(h.queue.queued).toBe(4);
  await h.finish(0);
  expect(h.sent[1].names).toEqual(['b1', 'b2', 'a2', 'c1']);
  expect(h.queue.queued).toBe(0);
});

test('an order is never in two batches at once', async () => {
  const h = harness({ maxBatches: 2 });
  h.push('a', 'a1');
  h.push('a', 'a2'); // a is busy: waits, although a slot is free
  h.push('b', 'b1'); // b is not: takes the free slot, alone
  expect(h.sent.map((b) => b.names)).toEqual([['a1'], ['b1']]);
  await h.finish(1);
  expect(h.sent).toHaveLength(2);
  await h.finish(0);
  expect(h.sent[2].names).toEqual(['a2']);
});

test('batches stop at maxBatchSize, and a group larger than that goes alone, unsplit', async () => {
  const h = harness({ maxBatchSize: 3 });
  h.push('x', 'x0');
  h.push('a', 'a1', 2);
  h.push('b', 'b1', 2);
  h.push('c', 'c1', 5);
  await h.finish(0);
  expect(h.sent[1].names).toEqual(['a1']);
  await h.finish(1);
  expect(h.sent[2].names).toEqual(['b1']);
  await h.finish(2);
  expect(h.sent[3].names).toEqual(['c1']);
});

test('a job refused as it leaves the queue is rejected, never sent', async () => {
  const h = harness({ refuse: (job) => job.name.startsWith('stale') });
  h.push('a', 'a1');
  h.push('b', 'stale-b');
  h.push('c', 'c1');
  await h.finish(0);
  expect(h.rejected).toEqual(['stale-b']);
  expect(h.sent[1].names).toEqual(['c1']);
});

test('callers answered by a batch queue again before its slot is free, and go together in the next one', async () => {
  const h = harness({ maxBatches: 1 });
  h.push('a', 'a1');
  h.push('b', 'b1');
  h.sent[0].done();
  // As a caller would: its next upload a few promise hops after the answer.
  await Promise.resolve().then(() => Promise.resolve()).then(() => h.push('c', 'c1'));
  for (let turn = 0; turn < 2; turn++) await new Promise(setImmediate);
  expect(h.sent.map((b) => b.names)).toEqual([['a1'], ['b1', 'c1']]);
});

test('coalesce: false sends every call as a batch of its own, in call order, one order in several batches at once', async () => {
  const h = harness({ coalesce: false, maxBatches: 2 });
  h.push('a', 'a1');
  h.push('a', 'a2');
  h.push('b', 'b1');
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
