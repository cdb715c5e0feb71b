'use strict';

// The addon in several worker_threads at once: per-environment state, one
// repository each, and a worker terminated mid-burst. Run in a child process
// so that a crash shows as an exit signal instead of taking Jest down.
const { spawnSync } = require('child_process');
const path = require('path');
const { testDatabase, expectGapless, range, uri } = require('./support/db');

let t;
beforeAll(async () => {
  t = await testDatabase(__filename);
});
afterAll(() => t.done());

function scenario(mode) {
  const run = spawnSync(process.execPath, [path.join(__dirname, 'support', 'workers-scenario.js'), JSON.stringify({ uri: uri(), dbName: t.dbName, mode })], {
    encoding: 'utf8',
    timeout: 60000,
  });
  expect(run.signal).toBeNull();
  expect(run.stderr).not.toMatch(/Abort|Segmentation|FATAL|core dumped/i);
  expect(run.status).toBe(0);
  return JSON.parse(run.stdout.trim().split('\n').pop());
}

test('4 workers x 250 uploads to one order: 1..1000', async () => {
  const results = scenario('four');
  expect(results.map((r) => r.errors)).toEqual([[], [], [], []]);
  expect(results.flatMap((r) => r.versions).sort((a, b) => a - b)).toEqual(range(1000));
  await expectGapless(t.db, 'workers_four', 'four', 1000);
});

test('terminating a worker mid-burst leaves the process and the other workers running', async () => {
  const [terminated, a, b] = scenario('terminate');
  expect(terminated).toEqual({ exited: 1 });
  for (const w of [a, b]) {
    expect(w.errors).toEqual([]);
    expect(w.versions).toHaveLength(2000);
  }
  const n = await t.db.collection('workers_terminate').countDocuments({ orderId: 'terminate' });
  expect(n).toBeGreaterThanOrEqual(4000);
  await expectGapless(t.db, 'workers_terminate', 'terminate', n);
});
