'use strict';

// A short libFuzzer run over the C code that reads bytes from JavaScript
// (scripts/fuzz.sh), with AddressSanitizer and UBSan. It found, on its first
// run, a document that passed validation yet made libbson abort when copied.
const { spawnSync } = require('child_process');
const path = require('path');

const { needs } = require('./support/needs');

needs('clang').test(
  'fuzzing the conversion code finds no crash, leak or undefined behaviour',
  () => {
    const run = spawnSync('bash', [path.join(__dirname, '..', 'scripts', 'fuzz.sh')], {
      encoding: 'utf8',
      env: { ...process.env, FUZZ_SECONDS: process.env.FUZZ_SECONDS || '15' },
      cwd: path.join(__dirname, '..'),
    });
    if (run.status !== 0) console.error(run.stdout, run.stderr);
    expect(run.stdout).toMatch(/number_of_executed_units: [1-9]/);
    expect(run.stdout).toContain('fuzz: no crash');
    expect(run.status).toBe(0);
  },
  120000,
);
