'use strict';

// One server for the whole run: a local FerretDB, unless MONGODB_URI names a
// real MongoDB (then the same tests run against it, unchanged).
const { MongoClient } = require('mongodb');
const { startFerretDB } = require('../../scripts/ferretdb');

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
  if (!process.env.MONGODB_URI) {
    const server = await startFerretDB();
    globalThis.__FERRETDB__ = server;
    process.env.MONGODB_URI = server.uri;
  }
  process.env.AAV_SERVER_KIND = await serverKind(process.env.MONGODB_URI);
  const shown = process.env.MONGODB_URI.replace(/\/\/[^@]*@/, '//***@');
  console.log(`\ntests run against ${process.env.AAV_SERVER_KIND} at ${shown}`);
};
