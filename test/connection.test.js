'use strict';

// An unreachable server: a quick, clear rejection, never a hang or a crash.
const net = require('net');
const { AssetRepository, ConnectionError } = require('..');

async function closedPort() {
  const server = net.createServer();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

test('a closed port rejects within the server-selection timeout, naming the host', async () => {
  const port = await closedPort();
  const repo = new AssetRepository({ uri: `mongodb://127.0.0.1:${port}/x?serverSelectionTimeoutMS=300`, collection: 'c' });
  const started = Date.now();
  const err = await repo.createWithAtomicVersion({ orderId: 'o', fileName: 'a.pdf' }).then(
    () => null,
    (e) => e,
  );
  const elapsed = Date.now() - started;
  expect(err).toBeInstanceOf(ConnectionError);
  expect(err.code).toBe('ERR_ASSET_CONNECTION');
  expect(err.message).toContain(`127.0.0.1:${port}`);
  // The URI's 300 ms, not the driver's 30 s default: a third of that default
  // leaves a loaded shared machine room and still fails if the option is lost.
  expect(elapsed).toBeLessThan(10000);
  expect(repo.stats()).toMatchObject({ uploads: 1, failed: 1, succeeded: 0 });
  await repo.close();
});

test('every queued upload of the burst is rejected too, none hangs', async () => {
  const port = await closedPort();
  const repo = new AssetRepository({ uri: `mongodb://127.0.0.1:${port}/x?serverSelectionTimeoutMS=300`, collection: 'c' });
  const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => repo.createWithAtomicVersion({ orderId: `o${i % 3}`, fileName: 'a.pdf' })));
  expect(results.every((r) => r.status === 'rejected' && r.reason.code === 'ERR_ASSET_CONNECTION')).toBe(true);
  await repo.close();
});

test('a call after close() rejects clearly, and close() twice is fine', async () => {
  const repo = new AssetRepository({ uri: process.env.MONGODB_URI, collection: 'closing' });
  await repo.close();
  await repo.close();
  await expect(repo.createWithAtomicVersion({ orderId: 'o', fileName: 'a.pdf' })).rejects.toMatchObject({
    name: 'RepositoryClosedError',
    code: 'ERR_ASSET_CLOSED',
  });
});
