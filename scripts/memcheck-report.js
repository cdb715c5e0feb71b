'use strict';

// Reads valgrind's XML report of a Node process and decides what counts.
// Every invalid access (read, write, free) counts, wherever it happens. A
// definite leak, or a branch on an uninitialised value, counts only when one
// of its stacks passes through this addon or libmongoc/libbson: the others
// are Node's own and change with each release (Node 24's OpenSSL keeps
// start-up allocations valgrind calls lost; Node 22's V8 garbage collector
// and optimiser branch on bytes valgrind thinks undefined). They are listed,
// not counted: a suppression per Node release would never be finished.
// `node scripts/memcheck-report.js report.xml`; exit 0 when nothing counts.
const fs = require('fs');

// Kinds that count only in our reach; anything else counts everywhere.
const REACH_ONLY = /^(?:Leak_|UninitCondition$|UninitValue$)/;
const OURS = /(?:^|\/)(?:atomic_asset_version(?:\.glibc|\.musl)?\.node|libmongoc-[^/]*|libbson-[^/]*)$/;

const unescape = (s) =>
  s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
const tag = (xml, name) => {
  const m = xml.match(new RegExp(`<${name}>([\\s\\S]*?)</${name}>`));
  return m ? unescape(m[1].trim()) : '';
};

function parse(xml) {
  return (xml.match(/<error>[\s\S]*?<\/error>/g) || []).map((block) => {
    const frames = (block.match(/<frame>[\s\S]*?<\/frame>/g) || []).map((f) => ({ obj: tag(f, 'obj'), fn: tag(f, 'fn') }));
    return { kind: tag(block, 'kind'), what: tag(block, 'what') || tag(tag(block, 'xwhat'), 'text'), frames };
  });
}

/** Splits valgrind's errors into those that fail the run and those that are Node's own. */
function classify(errors) {
  const counted = [];
  const ignored = [];
  for (const e of errors) {
    if (!REACH_ONLY.test(e.kind) || e.frames.some((f) => OURS.test(f.obj))) counted.push(e);
    else ignored.push(e);
  }
  return { counted, ignored };
}

function show(e) {
  const frames = e.frames.slice(0, 12).map((f) => `    ${f.fn || '???'} (${f.obj})`);
  return [`  ${e.kind}: ${e.what}`, ...frames].join('\n');
}

if (require.main === module) {
  const xml = fs.readFileSync(process.argv[2], 'utf8');
  if (!xml.includes('</valgrindoutput>')) {
    console.log(`memcheck: ${process.argv[2]} is incomplete: valgrind did not finish`);
    process.exit(1);
  }
  const { counted, ignored } = classify(parse(xml));
  if (ignored.length) {
    console.log(`memcheck: ${ignored.length} report(s) whose stacks never reach the addon, libmongoc or libbson (Node's own), not counted:`);
    for (const e of ignored)
      console.log(
        `  ${e.kind}: ${e.what} in ${e.frames
          .map((f) => f.fn)
          .filter(Boolean)
          .slice(0, 4)
          .join(' < ')}`,
      );
  }
  if (counted.length) {
    console.log(`memcheck: ${counted.length} error(s) in the addon's reach:`);
    for (const e of counted) console.log(show(e));
    process.exit(1);
  }
}

module.exports = { parse, classify };
