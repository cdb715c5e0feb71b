'use strict';

// The shipped types: a consumer compiles under --strict, and the wrong calls
// in it (marked @ts-expect-error) really fail to compile.
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.join(__dirname, '..');
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');

function compile(file, options = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsc-'));
  const config = {
    compilerOptions: {
      strict: true,
      noEmit: true,
      target: 'ES2022',
      module: 'commonjs',
      moduleResolution: 'node',
      baseUrl: root,
      paths: { 'atomic-asset-version': ['index.d.ts'] },
      skipLibCheck: false,
      types: [],
      ...options,
    },
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

test("model mode: the seed's Partial<IAsset> signature is satisfied under --strict, and a wrong call fails", () => {
  // Mongoose's own declarations need Node's and are not ours to check (skipLibCheck
  // covers .d.ts files only: index.d.ts is still checked through its use here).
  const withMongoose = { types: ['node'], typeRoots: [path.join(root, 'node_modules', '@types')], skipLibCheck: true };
  const file = path.join(__dirname, 'types', 'model-consumer.ts');
  const run = compile(file, withMongoose);
  expect(run.stdout + run.stderr).toBe('');
  expect(run.status).toBe(0);
  // Beside the original, where 'mongoose' resolves the same way.
  const bare = path.join(__dirname, 'types', `model-consumer-bare-${process.pid}.ts`);
  fs.writeFileSync(bare, fs.readFileSync(file, 'utf8').replace(/\/\/ @ts-expect-error.*\n/g, ''));
  try {
    const failed = compile(bare, withMongoose);
    expect(failed.stdout.match(/error TS\d+/g) || []).toHaveLength(1);
  } finally {
    fs.rmSync(bare, { force: true });
  }
});

test('removing an @ts-expect-error makes the compile fail: the wrong calls are caught', () => {
  const source = fs.readFileSync(path.join(__dirname, 'types', 'consumer.ts'), 'utf8');
  const file = path.join(os.tmpdir(), `consumer-${process.pid}.ts`);
  fs.writeFileSync(file, source.replace(/\/\/ @ts-expect-error.*\n/g, ''));
  try {
    const run = compile(file);
    expect(run.status).not.toBe(0);
    const errors = run.stdout.match(/error TS\d+/g) || [];
    expect(errors).toHaveLength(6);
  } finally {
    fs.rmSync(file, { force: true });
  }
});
