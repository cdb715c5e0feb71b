'use strict';

// The service as measure-rss.js measures it: the compiled app from the
// directory given, on the package's repository, listening on 127.0.0.1. Works
// for today's app and for the one before issue 10 (createApp({ service }),
// app.listen), so the two are measured the same way.
const path = require('path');
const http = require('http');
const { MongoClient } = require('mongodb');

const [srcDir, uri, filesDir] = process.argv.slice(2);
const ROOT = path.join(__dirname, '..', '..', '..');
const { AssetRepository } = require(ROOT);
const { createApp } = require(path.join(srcDir, 'app.js'));
const { AssetService } = require(path.join(srcDir, 'asset-service.js'));
const { FileStore } = require(path.join(srcDir, 'file-store.js'));

(async () => {
  const client = await MongoClient.connect(uri);
  const repository = new AssetRepository({ uri, dbName: 'rss', collection: 'assets' });
  const service = new AssetService(repository, new FileStore(filesDir), client.db('rss').collection('assets'));
  const server = http.createServer(createApp({ service }));
  server.listen(0, '127.0.0.1', () => process.send(server.address().port));
})();
