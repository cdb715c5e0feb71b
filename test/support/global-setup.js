'use strict';

// One server for the whole run: a local FerretDB, unless MONGODB_URI names a
// real MongoDB (then the same tests run against it, unchanged).
const { startFerretDB } = require('../../scripts/ferretdb');

module.exports = async () => {
  if (process.env.MONGODB_URI) {
    console.log(`\ntests run against MONGODB_URI (${process.env.MONGODB_URI.replace(/\/\/[^@]*@/, '//***@')})`);
    return;
  }
  const server = await startFerretDB();
  globalThis.__FERRETDB__ = server;
  process.env.MONGODB_URI = server.uri;
  process.env.AAV_TEST_SERVER = 'ferretdb';
  console.log(`\ntests run against FerretDB v1.24.2 at ${server.uri}`);
};
