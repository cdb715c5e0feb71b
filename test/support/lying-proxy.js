'use strict';

// A TCP proxy between a client and a MongoDB server that lies at the worst
// moment: it forwards an insert, waits for the server's reply (so the insert
// is committed), then drops the connection instead of delivering the reply.
// The client cannot know whether its insert happened.
const net = require('net');

const OP_MSG = 2013;

/** Splits a stream into wire-protocol messages (each starts with its int32 length). */
function messages(onMessage) {
  let buffered = Buffer.alloc(0);
  return (chunk) => {
    buffered = Buffer.concat([buffered, chunk]);
    while (buffered.length >= 4 && buffered.length >= buffered.readInt32LE(0)) {
      const len = buffered.readInt32LE(0);
      onMessage(buffered.subarray(0, len));
      buffered = buffered.subarray(len);
    }
  };
}

/** The first key of an OP_MSG's body section, e.g. "insert". */
function commandName(msg) {
  if (msg.length < 22 || msg.readInt32LE(12) !== OP_MSG || msg[20] !== 0) return null;
  const end = msg.indexOf(0, 26);
  return end > 26 ? msg.toString('utf8', 26, end) : null;
}

/** Starts the proxy; `dropInserts` replies to inserts are swallowed, one per connection. */
async function startLyingProxy(upstreamPort, dropInserts) {
  let toDrop = dropInserts;
  const stats = { dropped: 0, inserts: 0 };
  const server = net.createServer((client) => {
    const upstream = net.connect(upstreamPort, '127.0.0.1');
    let swallowNextReply = false;
    const kill = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', kill);
    upstream.on('error', kill);
    client.on('close', kill);
    upstream.on('close', kill);
    client.on(
      'data',
      messages((msg) => {
        if (commandName(msg) === 'insert') {
          stats.inserts++;
          if (toDrop > 0) {
            toDrop--;
            swallowNextReply = true;
          }
        }
        upstream.write(msg);
      }),
    );
    upstream.on(
      'data',
      messages((msg) => {
        if (swallowNextReply) {
          stats.dropped++;
          kill(); // the server has answered, so the insert is committed
          return;
        }
        client.write(msg);
      }),
    );
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: server.address().port, stats, close: () => new Promise((r) => server.close(r)) };
}

module.exports = { startLyingProxy };
