'use strict';

// The soak's checker (scripts/soak-check.js) on hand-made histories: it must
// flag each broken promise, and must not flag what the promises allow
// (a deleted top reused, a settle that re-stores a deleted document under
// the same _id, calls that overlap in time).
const { check } = require('../scripts/soak-check');

const ok = (tag, orderId, version, start, end, _id = `id-${tag}`) => ({
  tag,
  orderId,
  final: 'resolved',
  attempts: [{ start, end, outcome: 'resolved', _id, version }],
});
const failed = (tag, orderId, start, end, name = 'ConnectionError') => ({
  tag,
  orderId,
  final: 'failed',
  attempts: [{ start, end, outcome: 'failed', name, code: 'ERR_ASSET_CONNECTION' }],
});
const doc = (tag, orderId, version, _id = `id-${tag}`) => ({ _id, orderId, version, tag });
const kinds = (violations) => violations.map((v) => v.kind).sort();

test('a clean history has no violation', () => {
  const uploads = [ok('a', 'o', 1, 0, 10), ok('b', 'o', 2, 5, 20), failed('c', 'o', 6, 30)];
  expect(check({ uploads, deletions: [], docs: [doc('a', 'o', 1), doc('b', 'o', 2)] })).toEqual([]);
});

test('a failed upload that is stored, and an upload stored under two _ids, are flagged', () => {
  const uploads = [ok('a', 'o', 1, 0, 10), failed('b', 'o', 11, 20), { ...ok('c', 'o', 3, 21, 30) }];
  const docs = [doc('a', 'o', 1), doc('b', 'o', 2), doc('c', 'o', 3), doc('c', 'o', 4, 'other-id')];
  expect(kinds(check({ uploads, deletions: [], docs }))).toEqual(['failed-but-stored', 'stored-twice']);
});

test('a resolved upload that is missing, or stored under another version, is flagged', () => {
  const uploads = [ok('a', 'o', 1, 0, 10), ok('b', 'o', 2, 11, 20)];
  const docs = [doc('b', 'o', 3)];
  expect(kinds(check({ uploads, deletions: [], docs }))).toEqual(['not-gapless', 'resolved-not-stored', 'resolved-other-version']);
});

test('an order without deletions must hold exactly 1..n; one with deletions need not', () => {
  const uploads = [ok('a', 'x', 1, 0, 10), ok('b', 'x', 3, 11, 20), ok('c', 'y', 1, 0, 10), ok('d', 'y', 3, 11, 20), ok('e', 'y', 2, 1, 2)];
  const deletions = [{ orderId: 'y', _id: 'id-e', version: 2, tag: 'e', start: 5, end: 6 }];
  const docs = [doc('a', 'x', 1), doc('b', 'x', 3), doc('c', 'y', 1), doc('d', 'y', 3)];
  const v = check({ uploads, deletions, docs });
  expect(v.map((x) => [x.kind, x.orderId])).toEqual([['not-gapless', 'x']]);
});

test('a version below one confirmed before the call began is flagged (a hole filled)', () => {
  // v1 deleted, v2..v3 stored and confirmed; a later call gets v1.
  const uploads = [ok('a', 'o', 1, 0, 10), ok('b', 'o', 2, 11, 20), ok('c', 'o', 3, 21, 30), ok('late', 'o', 1, 40, 50)];
  const deletions = [{ orderId: 'o', _id: 'id-a', version: 1, tag: 'a', start: 31, end: 32 }];
  const docs = [doc('b', 'o', 2), doc('c', 'o', 3), doc('late', 'o', 1)];
  const v = check({ uploads, deletions, docs });
  expect(v.map((x) => x.kind)).toEqual(['version-went-down']);
  expect(v[0].detail).toMatchObject({ tag: 'late', version: 1, below: { version: 3 } });
});

test('reusing a deleted top is allowed; so is anything when the calls overlap', () => {
  const uploads = [ok('a', 'o', 1, 0, 10), ok('b', 'o', 2, 11, 20), ok('reuse', 'o', 2, 40, 50), ok('x', 'p', 2, 0, 30), ok('overlap', 'p', 1, 30, 40)];
  const deletions = [{ orderId: 'o', _id: 'id-b', version: 2, tag: 'b', start: 25, end: 26 }];
  const docs = [doc('a', 'o', 1), doc('reuse', 'o', 2), doc('x', 'p', 2), doc('overlap', 'p', 1)];
  expect(check({ uploads, deletions, docs })).toEqual([]);
});

test('a deletion racing the call (begun before it ended) voids the bound it would give', () => {
  const uploads = [ok('a', 'o', 1, 0, 10), ok('b', 'o', 2, 11, 20), ok('c', 'o', 1, 30, 40)];
  const deletions = [
    { orderId: 'o', _id: 'id-a', version: 1, tag: 'a', start: 25, end: 26 },
    { orderId: 'o', _id: 'id-b', version: 2, tag: 'b', start: 35, end: 36 },
  ];
  expect(check({ uploads, deletions, docs: [doc('c', 'o', 1)] })).toEqual([]);
  // The same deletion of v2 after the call ended: v1 was below a live v2.
  deletions[1] = { ...deletions[1], start: 41, end: 42 };
  expect(kinds(check({ uploads, deletions, docs: [doc('c', 'o', 1)] }))).toEqual(['version-went-down']);
});

test('a settle that stores again, under the same _id, a document deleted meanwhile is one copy', () => {
  const settled = {
    tag: 's',
    orderId: 'o',
    final: 'resolved',
    attempts: [
      { start: 0, end: 10, outcome: 'unknown', name: 'OutcomeUnknownError', _id: 'id-s' },
      { start: 30, end: 40, outcome: 'resolved', _id: 'id-s', version: 2 },
    ],
  };
  const deletions = [{ orderId: 'o', _id: 'id-s', version: 1, tag: 's', start: 15, end: 16 }];
  expect(check({ uploads: [settled], deletions, docs: [doc('s', 'o', 2)] })).toEqual([]);
});

test('an unsettled outcome and a document no call wrote are flagged', () => {
  const unsettled = { tag: 'u', orderId: 'o', final: 'unsettled', attempts: [{ start: 0, end: 10, outcome: 'unknown', _id: 'id-u' }] };
  const v = check({ uploads: [unsettled], deletions: [], docs: [doc('u', 'o', 1), doc('ghost', 'o', 2)] });
  expect(kinds(v)).toEqual(['unknown-document', 'unsettled']);
});

test('a settling retry told "failed" while the upload is stored is flagged as its own kind', () => {
  const u = {
    tag: 's',
    orderId: 'o',
    final: 'failed',
    attempts: [
      { start: 0, end: 10, outcome: 'unknown', name: 'OutcomeUnknownError', _id: 'id-s' },
      { start: 11, end: 20, outcome: 'failed', name: 'ConnectionError', code: 'ERR_ASSET_CONNECTION' },
    ],
  };
  const v = check({ uploads: [u], deletions: [], docs: [doc('s', 'o', 1)] });
  expect(v.map((x) => x.kind)).toEqual(['failed-after-unknown-but-stored']);
  expect(v[0].detail.calls).toBe('OutcomeUnknownError > ConnectionError');
});
