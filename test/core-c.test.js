'use strict';

// The C core's own tests (test/c/core_test.c), built and run against the test
// server in every `npm test`, whether or not valgrind is installed (that is
// scripts/memcheck.sh's extra mode).
const { execFileSync, spawnSync } = require('child_process');
const path = require('path');
const { uri } = require('./support/db');

const root = path.join(__dirname, '..');

test('every C core scenario passes against the server', () => {
  execFileSync('bash', [path.join(root, 'scripts', 'build-core-test.sh')], { stdio: 'pipe' });
  const run = spawnSync(path.join(root, 'build', 'c', 'core_test'), [uri()], { encoding: 'utf8', timeout: 120000 });
  const failedLines = run.stdout.split('\n').filter((line) => line.startsWith('FAIL'));
  expect({ failed: failedLines, stderr: run.stderr }).toEqual({ failed: [], stderr: '' });
  expect(run.status).toBe(0);
  const [, passed, failed, skipped] = run.stdout.match(/^(\d+) passed, (\d+) failed, (\d+) skipped$/m);
  expect({ failed: Number(failed), skipped: Number(skipped) }).toEqual({ failed: 0, skipped: 0 });
  expect(Number(passed)).toBeGreaterThanOrEqual(12);
}, 180000);
