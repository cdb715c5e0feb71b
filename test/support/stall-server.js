'use strict';

// A TCP proxy in front of a MongoDB server whose network can stall: while
// stalled it still accepts connections but holds every byte, both ways, so
// the client's driver calls block in a read until their timeouts, exactly as
// behind a partition. release() delivers what it held, in order, and lets
// traffic flow again. No DNS (127.0.0.1 only): it must not use the threadpool
// whose use the tests measure.
const net = require('net');

async function startStallServer(upstreamPort) {
  let stalled = false;
  const held = []; // [destination socket, chunk], in arrival order
  const sockets = new Set();
  const stats = { connections: 0, heldChunks: 0 };
  const server = net.createServer((client) => {
    stats.connections++;
    const upstream = net.connect(upstreamPort, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    const kill = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const s of [client, upstream]) {
      s.on('error', kill);
      s.on('close', kill);
    }
    const forward = (to) => (chunk) => {
      if (stalled) {
        stats.heldChunks++;
        held.push([to, chunk]);
      } else {
        to.write(chunk);
      }
    };
    client.on('data', forward(upstream));
    upstream.on('data', forward(client));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    stats,
    stall() {
      stalled = true;
    },
    release() {
      stalled = false;
      for (const [to, chunk] of held.splice(0)) if (!to.destroyed) to.write(chunk);
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

module.exports = { startStallServer };
