'use strict';

// Checks every relative link in the repository's Markdown files: the file it
// names exists, and a #fragment names a heading of that file (GitHub's
// slugs). External links are not fetched. Exits 1 and lists what is broken.
//
//   node scripts/check-links.js [file.md …]     default: every tracked *.md
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

const ROOT = path.join(__dirname, '..');

function markdownFiles() {
  const out = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '*.md'], { cwd: ROOT, encoding: 'utf8' });
  return out.split('\n').filter((f) => f && !f.startsWith('node_modules/'));
}

// GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens,
// a repeated heading gets -1, -2 ….
function anchorsOf(file) {
  const seen = new Map();
  const anchors = new Set();
  let fenced = false;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    const m = !fenced && /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = m[1]
      .toLowerCase()
      .replace(/<[^>]*>/g, '')
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) || 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

const broken = [];
const files = process.argv.length > 2 ? process.argv.slice(2) : markdownFiles();
for (const rel of files) {
  const file = path.resolve(ROOT, rel);
  let fenced = false;
  fs.readFileSync(file, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (/^\s*```/.test(line)) fenced = !fenced;
      if (fenced) return;
      const text = line.replace(/`[^`]*`/g, '');
      for (const m of text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
        const target = m[1];
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
        const [target_path, fragment] = target.split('#');
        const dest = target_path ? path.resolve(path.dirname(file), decodeURI(target_path)) : file;
        const where = `${rel}:${i + 1}: ${target}`;
        if (!fs.existsSync(dest)) broken.push(`${where} (no such file)`);
        else if (fragment && dest.endsWith('.md') && !anchorsOf(dest).has(fragment)) broken.push(`${where} (no such heading)`);
      }
    });
}
if (broken.length) {
  console.error(`${broken.length} broken link(s):\n${broken.join('\n')}`);
  process.exit(1);
}
console.log(`links: ${files.length} files, all relative links resolve`);
