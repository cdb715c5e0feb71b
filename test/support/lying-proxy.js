'use strict';

// A proxy that lies at the worst moment: it forwards an insert, waits for the
// server's reply (so the insert is committed), then drops the connection
// instead of delivering the reply. The client cannot know whether its insert
// happened. Kept for the tests written against it; it is the fail proxy with
// `dropReplyAfterExecute` on the first `dropInserts` inserts.
const { startFailProxy } = require('./fail-proxy');

async function startLyingProxy(upstreamPort, dropInserts) {
  const proxy = await startFailProxy({ upstreamPort });
  proxy.configureFailPoint({ mode: { times: dropInserts }, data: { failCommands: ['insert'], dropReplyAfterExecute: true } });
  const stats = {
    get dropped() {
      return proxy.stats.injected.dropReplyAfterExecute;
    },
    get inserts() {
      return proxy.stats.seen.insert || 0;
    },
  };
  return { port: proxy.port, stats, close: () => proxy.close() };
}

module.exports = { startLyingProxy };
