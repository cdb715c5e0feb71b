'use strict';

// The C core's own tests and a focused addon scenario under valgrind: any
// invalid access or definite leak fails (scripts/memcheck.sh).
const { spawnSync } = require('child_process');
const path = require('path');

const hasValgrind = spawnSync('valgrind', ['--version']).status === 0;

(hasValgrind ? test : test.skip)('valgrind finds no invalid access and no definite leak', () => {
  const run = spawnSync('bash', [path.join(__dirname, '..', 'scripts', 'memcheck.sh')], {
    encoding: 'utf8',
    env: { ...process.env, NODE_NO_WARNINGS: '1' },
  });
  if (run.status !== 0) console.error(run.stdout, run.stderr);
  expect(run.stdout).toMatch(/\d+ passed, 0 failed/);
  expect(run.stdout).toContain('memcheck: clean');
  expect(run.status).toBe(0);
}, 180000);
