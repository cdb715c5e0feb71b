'use strict';

// The C core's own tests and a focused addon scenario under valgrind: any
// invalid access, and any definite leak or uninitialised-value branch whose
// stack reaches the addon, libmongoc or libbson, fails (scripts/memcheck.sh).
// Node's own (Node 24's OpenSSL start-up leak, Node 22's V8 branches) are
// listed and not counted.
const { spawnSync } = require('child_process');
const path = require('path');
const { parse, classify } = require('../scripts/memcheck-report');

const { needs } = require('./support/needs');

needs('valgrind').test(
  "valgrind finds no invalid access and no definite leak in the addon's reach",
  () => {
    const run = spawnSync('bash', [path.join(__dirname, '..', 'scripts', 'memcheck.sh')], {
      encoding: 'utf8',
      env: { ...process.env, NODE_NO_WARNINGS: '1' },
    });
    if (run.status !== 0) console.error(run.stdout, run.stderr);
    expect(run.stdout).toMatch(/\d+ passed, 0 failed/);
    expect(run.stdout).toContain('memcheck: clean');
    expect(run.status).toBe(0);
  },
  180000,
);

// valgrind's XML for one definite leak, shaped as Node 24 reports its
// OpenSSL start-up allocation; `via` is the library of the middle frame.
const leak = (via) => `<error>
  <unique>0xe</unique>
  <tid>1</tid>
  <kind>Leak_DefinitelyLost</kind>
  <xwhat>
    <text>24 bytes in 1 blocks are definitely lost in loss record 15 of 97</text>
    <leakedbytes>24</leakedbytes>
  </xwhat>
  <stack>
    <frame><ip>0x74297B4</ip><obj>/usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so</obj><fn>malloc</fn></frame>
    <frame><ip>0x1E46910</ip><obj>${via}</obj><fn>some_caller</fn></frame>
    <frame><ip>0x8E2BAB</ip><obj>/opt/node24/bin/node</obj><fn>node::Start(int, char**)</fn></frame>
  </stack>
</error>`;
const report = (...errors) => `<?xml version="1.0"?>\n<valgrindoutput>\n${errors.join('\n')}\n</valgrindoutput>\n`;

test("a definite leak counts when its stack reaches the addon, libmongoc or libbson, not when it is only Node's", () => {
  const ours = [
    '/work/x/node_modules/atomic-asset-version/build/Release/atomic_asset_version.node',
    '/usr/lib/x86_64-linux-gnu/libmongoc-1.0.so.0.0.0',
    '/usr/lib/x86_64-linux-gnu/libbson-1.0.so.0',
  ];
  const errors = parse(report(leak('/opt/node24/bin/node'), ...ours.map(leak)));
  expect(errors).toHaveLength(4);
  const { counted, ignored } = classify(errors);
  expect(counted.map((e) => e.frames[1].obj)).toEqual(ours);
  expect(ignored.map((e) => e.frames[1].obj)).toEqual(['/opt/node24/bin/node']);
  expect(ignored[0].what).toBe('24 bytes in 1 blocks are definitely lost in loss record 15 of 97');
});

test('an uninitialised-value branch counts when its stack reaches the addon, not when it is inside V8 alone', () => {
  const uninit = (obj) => `<error><kind>UninitCondition</kind><what>Conditional jump or move depends on uninitialised value(s)</what>
    <stack><frame><obj>/opt/node22/bin/node</obj><fn>v8::internal::compiler::PipelineImpl::OptimizeGraph</fn></frame>
    <frame><obj>${obj}</obj><fn>caller</fn></frame></stack></error>`;
  const { counted, ignored } = classify(parse(report(uninit('/opt/node22/bin/node'), uninit('/x/build/Release/atomic_asset_version.node'))));
  expect(counted.map((e) => e.frames[1].obj)).toEqual(['/x/build/Release/atomic_asset_version.node']);
  expect(ignored.map((e) => e.kind)).toEqual(['UninitCondition']);
});

test('an invalid access counts wherever it happens', () => {
  const invalid = `<error><kind>InvalidRead</kind><what>Invalid read of size 8</what>
    <stack><frame><obj>/opt/node24/bin/node</obj><fn>v8::internal::Heap::Scavenge()</fn></frame></stack></error>`;
  const { counted, ignored } = classify(parse(report(invalid)));
  expect(counted.map((e) => e.kind)).toEqual(['InvalidRead']);
  expect(ignored).toEqual([]);
});
