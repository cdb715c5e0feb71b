'use strict';

// The MongoDB wire protocol, as much of it as the fail proxy needs: split a
// byte stream into messages, read an OP_MSG's body (section kind 0) and its
// document sequences (kind 1), read the handshake of a legacy OP_QUERY, and
// build an OP_MSG reply. Bodies are decoded and encoded with the `bson`
// package, the one the official driver uses; int64 values stay Long so a
// rewritten reply keeps the server's types.
const { BSON } = require('bson');

const OP_REPLY = 1;
const OP_QUERY = 2004;
const OP_COMPRESSED = 2012;
const OP_MSG = 2013;
const CHECKSUM_PRESENT = 1 << 0;
const MORE_TO_COME = 1 << 1;
const DECODE = { promoteLongs: false, bsonRegExp: true };

/** Splits a stream into whole messages (each starts with its int32 length). */
function messageSplitter(onMessage) {
  let buffered = Buffer.alloc(0);
  return (chunk) => {
    buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
    while (buffered.length >= 4 && buffered.length >= buffered.readInt32LE(0)) {
      const len = buffered.readInt32LE(0);
      if (len < 16) throw new Error(`wire message of ${len} bytes`);
      onMessage(buffered.subarray(0, len));
      buffered = buffered.subarray(len);
    }
  };
}

function header(msg) {
  return { length: msg.readInt32LE(0), requestId: msg.readInt32LE(4), responseTo: msg.readInt32LE(8), opCode: msg.readInt32LE(12) };
}

/**
 * An OP_MSG as { flags, body, sequences: { identifier: Buffer[] } }, or null
 * for any other opcode. A checksum, when present, is ignored (and dropped if
 * the message is re-encoded).
 */
function parseOpMsg(msg) {
  if (msg.readInt32LE(12) !== OP_MSG) return null;
  const flags = msg.readUInt32LE(16);
  const end = msg.length - (flags & CHECKSUM_PRESENT ? 4 : 0);
  let pos = 20;
  let body = null;
  const sequences = {};
  while (pos < end) {
    const kind = msg[pos++];
    if (kind === 0) {
      const size = msg.readInt32LE(pos);
      body = BSON.deserialize(msg.subarray(pos, pos + size), DECODE);
      pos += size;
    } else if (kind === 1) {
      const size = msg.readInt32LE(pos);
      const stop = pos + size;
      const nameEnd = msg.indexOf(0, pos + 4);
      const identifier = msg.toString('utf8', pos + 4, nameEnd);
      const docs = [];
      for (let p = nameEnd + 1; p < stop; p += msg.readInt32LE(p)) docs.push(msg.subarray(p, p + msg.readInt32LE(p)));
      sequences[identifier] = docs;
      pos = stop;
    } else {
      throw new Error(`OP_MSG section kind ${kind}`);
    }
  }
  return { flags, body, sequences };
}

/** The command name of a request: the first key of its body. */
function commandName(body) {
  return body ? Object.keys(body)[0] : null;
}

/** The body of a legacy OP_QUERY (drivers send their first handshake this way). */
function parseOpQuery(msg) {
  if (msg.readInt32LE(12) !== OP_QUERY) return null;
  const nameEnd = msg.indexOf(0, 20);
  const docStart = nameEnd + 1 + 8; // numberToSkip, numberToReturn
  const size = msg.readInt32LE(docStart);
  return { collection: msg.toString('utf8', 20, nameEnd), body: BSON.deserialize(msg.subarray(docStart, docStart + size), DECODE) };
}

/**
 * An OP_MSG with one body section, then a document sequence (section kind 1)
 * for each entry of `sequences` ({ identifier: Buffer[] }), and no checksum.
 */
function encodeOpMsg({ requestId, responseTo, flags = 0, body, sequences = {} }) {
  const sections = [Buffer.from([0]), BSON.serialize(body)];
  for (const [identifier, docs] of Object.entries(sequences)) {
    const name = Buffer.from(`${identifier}\0`);
    const size = Buffer.alloc(4);
    size.writeInt32LE(4 + name.length + docs.reduce((sum, d) => sum + d.length, 0));
    sections.push(Buffer.from([1]), size, name, ...docs);
  }
  const head = Buffer.alloc(20);
  const msg = Buffer.concat([head, ...sections]);
  msg.writeInt32LE(msg.length, 0);
  msg.writeInt32LE(requestId, 4);
  msg.writeInt32LE(responseTo, 8);
  msg.writeInt32LE(OP_MSG, 12);
  msg.writeUInt32LE(flags & ~CHECKSUM_PRESENT, 16);
  return msg;
}

module.exports = {
  OP_REPLY,
  OP_QUERY,
  OP_COMPRESSED,
  OP_MSG,
  CHECKSUM_PRESENT,
  MORE_TO_COME,
  messageSplitter,
  header,
  parseOpMsg,
  parseOpQuery,
  commandName,
  encodeOpMsg,
};
