'use strict';

// The figures the reference design says to monitor, without a server.
const { Stats } = require('../../lib/stats');
const { VersionConflictError, OutcomeUnknownError, ConnectionError } = require('../../lib/errors');

test('stored, failed and unknown outcomes are counted apart; retries are collisions only', () => {
  const s = new Stats();
  s.record(undefined, 0);
  s.record(undefined, 2);
  s.record(new VersionConflictError('spent', { reason: 'RETRIES_EXHAUSTED' }), 6);
  s.record(new OutcomeUnknownError('lost', { reason: 'REPLY_LOST' }), 0);
  s.record(new ConnectionError('x'));
  expect(s.snapshot({ queued: 3 })).toEqual({
    uploads: 5,
    succeeded: 2,
    failed: 2,
    outcomeUnknown: 1,
    retries: 8,
    retryRate: 2 / 5,
    avgRetries: 8 / 5,
    failedAfterMaxRetries: 1,
    validationErrors: 0,
    batches: 0,
    queued: 3,
  });
});

test('an empty repository reports zero rates, not NaN', () => {
  expect(new Stats().snapshot({})).toMatchObject({ retryRate: 0, avgRetries: 0 });
});
