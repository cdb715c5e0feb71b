'use strict';

const { fork } = require('child_process');
const path = require('path');

/**
 * Starts writer processes, waits until each has connected and ensured the
 * index, then releases them together so their bursts really overlap.
 * Resolves with each writer's summary; with `onGo`, which starts the
 * caller's own burst at the same moment, with [summaries, its result].
 */
async function runWriters(jobs, onGo = () => {}) {
  const children = jobs.map((job) => fork(path.join(__dirname, 'writer.js'), [JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] }));
  const outputs = children.map((child) => {
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => {
      err += d;
      process.stderr.write(d);
    });
    return new Promise((resolve, reject) => {
      child.on('exit', (code, signal) => {
        if (code !== 0) reject(new Error(`writer exited ${code ?? signal}: ${err}`));
        else resolve(JSON.parse(out.trim().split('\n').pop()));
      });
    });
  });
  // A writer that dies before it is ready (its ensureIndex failed) fails the
  // run instead of leaving the others waiting for "go" forever.
  const ready = children.map((child, i) => Promise.race([new Promise((resolve) => child.once('message', resolve)), outputs[i]]));
  try {
    await Promise.all(ready);
  } catch (err) {
    for (const child of children) child.kill();
    await Promise.allSettled(outputs);
    throw err;
  }
  for (const child of children) child.send('go');
  const local = onGo(); // the caller's own burst, started at the same moment
  const summaries = await Promise.all(outputs);
  return local === undefined ? summaries : [summaries, await local];
}

module.exports = { runWriters };
