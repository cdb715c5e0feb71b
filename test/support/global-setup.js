'use strict';

// One server for the whole run: a local FerretDB, unless MONGODB_URI names a
// real MongoDB (then the same tests run against it, unchanged). Its backend
// is PostgreSQL, or SQLite with AAV_BACKEND=sqlite (`npm run test:sqlite`).
// On PostgreSQL one throwaway cluster serves the whole run, and
// AAV_POSTGRESQL_URL tells the tests (and every FerretDB they start) where
// it is, so that several front ends share one database.
const { MongoClient } = require('mongodb');
const { startFerretDB, defaultBackend } = require('../../scripts/ferretdb');
const { startPostgres } = require('../../scripts/postgres');

// FerretDB v1 answers buildInfo with its own version; MongoDB does not.
async function serverKind(uri) {
  const client = await MongoClient.connect(uri, { serverSelectionTimeoutMS: 10000 });
  try {
    const info = await client.db('admin').command({ buildInfo: 1 });
    return info.ferretdbVersion ? 'ferretdb' : 'mongodb';
  } finally {
    await client.close();
  }
}

module.exports = async () => {
  let backend = '';
  if (!process.env.MONGODB_URI) {
    // In stopping order. Jest runs no teardown when the setup throws, so a
    // failed start stops what did start itself.
    const servers = [];
    globalThis.__AAV_SERVERS__ = servers;
    let server;
    try {
      if (defaultBackend() === 'postgresql' && !process.env.AAV_POSTGRESQL_URL) {
        const postgres = await startPostgres();
        servers.unshift(postgres);
        process.env.AAV_POSTGRESQL_URL = postgres.url;
      }
      server = await startFerretDB();
      servers.unshift(server);
    } catch (err) {
      for (const s of servers) await s.stop();
      throw err;
    }
    process.env.MONGODB_URI = server.uri;
    process.env.AAV_BACKEND = server.backend;
    backend = ` (${server.backend})`;
  } else {
    // A server we did not start: its backend is unknown, and the
    // PostgreSQL-only tests cannot reach it, so they are skipped.
    delete process.env.AAV_POSTGRESQL_URL;
    delete process.env.AAV_BACKEND;
  }
  process.env.AAV_SERVER_KIND = await serverKind(process.env.MONGODB_URI);
  const shown = process.env.MONGODB_URI.replace(/\/\/[^@]*@/, '//***@');
  console.log(`\ntests run against ${process.env.AAV_SERVER_KIND}${backend} at ${shown}`);
};
