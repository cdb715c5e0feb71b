'use strict';

// The shipped types: a consumer compiles under --strict, and the wrong calls
// in it (marked @ts-expect-error) really fail to compile.
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.join(__dirname, '..');
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');

function compile(file) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsc-'));
  const config = {
    compilerOptions: { strict: true, noEmit: true, target: 'ES2022', module: 'commonjs', moduleResolution: 'node', baseUrl: root, paths: { 'atomic-asset-version': ['index.d.ts'] }, skipLibCheck: false, types: [] },
    files: [file],
  };
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(config));
  const run = spawnSync(process.execPath, [tsc, '-p', dir], { encoding: 'utf8' });
  fs.rmSync(dir, { recursive: true, force: true });
  return run;
}

test('a consumer compiles under tsc --strict, and every @ts-expect-error is a real error', () => {
  const run = compile(path.join(__dirname, 'types', 'consumer.ts'));
  expect(run.stdout + run.stderr).toBe('');
  expect(run.status).toBe(0);
});

test('removing an @ts-expect-error makes the compile fail: the wrong calls are caught', () => {
  const source = fs.readFileSync(path.join(__dirname, 'types', 'consumer.ts'), 'utf8');
  const file = path.join(os.tmpdir(), `consumer-${process.pid}.ts`);
  fs.writeFileSync(file, source.replace(/\/\/ @ts-expect-error.*\n/g, ''));
  try {
    const run = compile(file);
    expect(run.status).not.toBe(0);
    const errors = run.stdout.match(/error TS\d+/g) || [];
    expect(errors).toHaveLength(5);
  } finally {
    fs.rmSync(file, { force: true });
  }
});
