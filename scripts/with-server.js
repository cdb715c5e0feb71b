'use strict';

// Runs a command with MONGODB_URI set: the caller's, or a FerretDB started
// for the command and stopped after it. `node scripts/with-server.js cmd …`
const { spawn } = require('child_process');
const { startFerretDB } = require('./ferretdb');

async function main() {
  const [cmd, ...args] = process.argv.slice(2);
  let server = null;
  if (!process.env.MONGODB_URI) {
    server = await startFerretDB();
    process.env.MONGODB_URI = server.uri;
  }
  const child = spawn(cmd, args, { stdio: 'inherit' });
  const code = await new Promise((resolve) => child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0))));
  if (server) await server.stop();
  process.exit(code);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
