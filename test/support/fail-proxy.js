'use strict';

// A TCP proxy between a client and a MongoDB-protocol server (FerretDB here)
// that produces the replies FerretDB never sends: it plays MongoDB's
// `failCommand` fail point (https://github.com/mongodb/mongo/wiki/The-failCommand-fail-point),
// and adds the faults a fail point cannot express: a reply lost after the
// command committed, a reply that never comes, an outage, and write errors.
//
// The fail point is configured like MongoDB's, from JavaScript
// (`proxy.configureFailPoint({ mode, data })`) or over the wire with the
// same command a test would send to a mongod started with
// enableTestCommands (`db.admin().command({ configureFailPoint: 'failCommand', … })`);
// the proxy answers that command itself.
//
//   mode: 'alwaysOn' | 'off' | { times: n } | { skip: n }
//   data: {
//     failCommands: ['insert', …]      required; command names the fail point affects
//     appName                          only connections whose handshake named this application
//     -- proxy-only filter --
//     onlyIfContains                   only requests whose bytes hold this string (a
//                                      value in one document: a fault tied to one upload)
//     blockConnection, blockTimeMS     wait this long before acting (or executing)
//     closeConnection                  hang up; the command is NOT executed
//     errorCode, errorLabels           reply { ok: 0, code, codeName, errmsg, errorLabels };
//                                      the command is NOT executed
//     writeConcernError                the command IS executed; its reply gains this document
//     -- proxy-only --
//     writeErrors: [{ index, code, errmsg }]   reply { ok: 1, n: 0, writeErrors }; NOT executed
//                                      (with writeConcernError, the reply carries both)
//     partialCommit: k                 an insert: forward its first k documents (half when
//                                      k is true), wait until they are committed, then
//                                      reply { ok: 0, code: 1 } as FerretDB does when it
//                                      inserts one by one and fails at a document
//     dropReplyAfterExecute            forward, wait for the server's reply (committed), hang up
//     stallReply, stallMs              forward, swallow the reply, hold the connection open
//                                      until releaseStalled(), close(), or stallMs
//   }
//
// Precedence is MongoDB's: closeConnection, then errorCode, then
// writeConcernError; the proxy-only faults slot in as listed. Error labels:
// `errorLabels` replaces whatever MongoDB would add (as the fail point does);
// without it, the labels MongoDB's ErrorLabelBuilder would add are computed
// from the command's session fields (RetryableWriteError for a retryable
// write with a retriable code, TransientTransactionError inside a
// transaction). Against a standalone server drivers send neither, so no
// label is added, as MongoDB would not.
//
// Limits: plain TCP only (TLS bytes cannot be read); OP_COMPRESSED messages
// pass through uninspected (drivers compress only when the URI asks); a
// request flagged moreToCome (w: 0) is never failed, as it expects no reply.
const net = require('net');
const { Double, Int32 } = require('bson');
const wire = require('./wire-message');

const CODE_NAMES = {
  2: 'BadValue',
  6: 'HostUnreachable',
  7: 'HostNotFound',
  24: 'LockTimeout',
  50: 'MaxTimeMSExpired',
  64: 'WriteConcernFailed',
  79: 'UnknownReplWriteConcern',
  89: 'NetworkTimeout',
  91: 'ShutdownInProgress',
  100: 'UnsatisfiableWriteConcern',
  112: 'WriteConflict',
  134: 'ReadConcernMajorityNotAvailableYet',
  189: 'PrimarySteppedDown',
  239: 'SnapshotTooOld',
  246: 'SnapshotUnavailable',
  251: 'NoSuchTransaction',
  262: 'ExceededTimeLimit',
  263: 'PreparedTransactionInProgress',
  9001: 'SocketException',
  10107: 'NotWritablePrimary',
  11000: 'DuplicateKey',
  11600: 'InterruptedAtShutdown',
  11602: 'InterruptedDueToReplStateChange',
  13435: 'NotPrimaryNoSecondaryOk',
  13436: 'NotPrimaryOrSecondary',
};

// ErrorCodes::isRetriableError in MongoDB's error_codes.yml.
const RETRIABLE = new Set([6, 7, 89, 91, 134, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436]);
// mongo::isTransientTransactionError (error_labels.cpp), outside commit/abort.
const TRANSIENT = new Set([112, 24, 263, 239, 246, 251, ...RETRIABLE]);

/** A write concern timeout as a replica set reports it (the driver test suites use this shape). */
const WRITE_CONCERN_TIMEOUT = Object.freeze({
  code: 64,
  codeName: 'WriteConcernFailed',
  errmsg: 'waiting for replication timed out',
  errInfo: { wtimeout: true },
});

/** FerretDB's answer when an insert fails at a document after committing those before it. */
const PARTIAL_COMMIT_REPLY = () => ({ ok: new Double(0), errmsg: 'injected: failed after inserting one by one', code: new Int32(1), codeName: 'InternalError' });

const HANDSHAKES = new Set(['hello', 'isMaster', 'ismaster']);

/** The labels MongoDB's ErrorLabelBuilder adds, from the request's session fields. */
function mongoLabels(body, code, wceCode) {
  const inTransaction = body.txnNumber !== undefined && body.autocommit !== undefined;
  const retryableWrite = body.txnNumber !== undefined && body.autocommit === undefined;
  if (inTransaction && code !== undefined && TRANSIENT.has(code)) return ['TransientTransactionError'];
  if (retryableWrite && (RETRIABLE.has(code) || RETRIABLE.has(wceCode))) return ['RetryableWriteError'];
  return [];
}

function checkFailPoint({ mode, data }) {
  const okMode = mode === 'off' || mode === 'alwaysOn' || (mode && typeof mode === 'object' && (Number.isInteger(mode.times) || Number.isInteger(mode.skip)));
  if (!okMode) throw new Error(`fail point mode must be 'off', 'alwaysOn', { times: n } or { skip: n }, got ${JSON.stringify(mode)}`);
  if (mode !== 'off' && !(data && Array.isArray(data.failCommands))) throw new Error('fail point data.failCommands must be an array');
}

/**
 * Starts the proxy on 127.0.0.1 (a free port unless `port` is given).
 * @param {{ upstreamPort: number, upstreamHost?: string, port?: number }} opts
 */
async function startFailProxy({ upstreamPort, upstreamHost = '127.0.0.1', port = 0 }) {
  const stats = {
    connections: 0,
    refused: 0,
    seen: {}, // command name -> requests
    injected: {
      blockConnection: 0,
      closeConnection: 0,
      errorCode: 0,
      writeErrors: 0,
      writeConcernError: 0,
      dropReplyAfterExecute: 0,
      partialCommit: 0,
      stallReply: 0,
      outages: 0,
    },
  };
  let failPoint = { mode: 'off', data: {}, remaining: 0, skip: 0, timesEntered: 0 };
  let outage = null; // { refuse } while the server is "away"
  let nextRequestId = 0x4fa11000;
  const connections = new Set();
  const stalled = new Set();

  /** Returns the fail point's data when this request trips it (and counts it), else null. */
  function trip(name, appName, msg) {
    const fp = failPoint;
    if (fp.mode === 'off' || !fp.data.failCommands.includes(name)) return null;
    if (fp.data.appName !== undefined && fp.data.appName !== appName) return null;
    if (fp.data.onlyIfContains !== undefined && !msg.includes(Buffer.from(fp.data.onlyIfContains))) return null;
    if (fp.skip > 0) {
      fp.skip -= 1;
      return null;
    }
    if (typeof fp.mode === 'object' && fp.mode.times !== undefined) {
      if (fp.remaining <= 0) return null;
      fp.remaining -= 1;
      if (fp.remaining === 0) fp.mode = 'off';
    }
    fp.timesEntered += 1;
    return fp.data;
  }

  function configureFailPoint(config) {
    checkFailPoint(config);
    const count = failPoint.timesEntered;
    const mode = config.mode;
    failPoint = {
      mode,
      data: config.data || { failCommands: [] },
      remaining: typeof mode === 'object' && mode.times !== undefined ? mode.times : 0,
      skip: typeof mode === 'object' && mode.skip !== undefined ? mode.skip : 0,
      timesEntered: count,
    };
    if (typeof mode === 'object' && mode.times === 0) failPoint.mode = 'off';
    return { count };
  }

  function handleConnection(client) {
    stats.connections += 1;
    if (outage) {
      stats.refused += 1;
      client.destroy();
      return;
    }
    const upstream = net.connect(upstreamPort, upstreamHost);
    const conn = { client, upstream, appName: undefined, pending: new Map(), timers: new Set() };
    connections.add(conn);
    const kill = () => {
      client.destroy();
      upstream.destroy();
      for (const t of conn.timers) clearTimeout(t);
      conn.timers.clear();
      stalled.delete(conn);
      connections.delete(conn);
    };
    conn.kill = kill;
    for (const s of [client, upstream]) {
      s.on('error', kill);
      s.on('close', kill);
    }
    const after = (ms) =>
      new Promise((resolve) => {
        const t = setTimeout(() => {
          conn.timers.delete(t);
          resolve();
        }, ms);
        conn.timers.add(t);
      });
    const reply = (request, body) => {
      client.write(wire.encodeOpMsg({ requestId: nextRequestId++, responseTo: request.requestId, body }));
    };

    // Requests are handled one after another, so a blocked one holds back
    // the next as it would on the server's connection thread.
    let chain = Promise.resolve();
    const onRequest = async (msg) => {
      if (client.destroyed) return;
      const head = wire.header(msg);
      const op = head.opCode === wire.OP_MSG ? wire.parseOpMsg(msg) : null;
      const legacy = head.opCode === wire.OP_QUERY ? wire.parseOpQuery(msg) : null;
      const body = (op || legacy || {}).body;
      const name = wire.commandName(body);
      if (name) stats.seen[name] = (stats.seen[name] || 0) + 1;
      if (name && HANDSHAKES.has(name) && body.client && body.client.application) conn.appName = body.client.application.name;
      if (!op) {
        upstream.write(msg);
        return;
      }
      if (name === 'configureFailPoint' && body.configureFailPoint === 'failCommand') {
        try {
          // BSON may carry { times } as an int64; the modes take plain numbers.
          const mode = body.mode && typeof body.mode === 'object' ? Object.fromEntries(Object.entries(body.mode).map(([k, v]) => [k, Number(v)])) : body.mode;
          const { count } = configureFailPoint({ mode, data: body.data });
          reply(head, { count: new Int32(count), ok: new Double(1) });
        } catch (err) {
          reply(head, { ok: new Double(0), errmsg: err.message, code: new Int32(2), codeName: 'BadValue' });
        }
        return;
      }
      const data = op.flags & wire.MORE_TO_COME ? null : trip(name, conn.appName, msg);
      if (!data) {
        upstream.write(msg);
        return;
      }
      if (data.blockConnection) {
        stats.injected.blockConnection += 1;
        await after(data.blockTimeMS || 0);
        if (client.destroyed) return;
      }
      if (data.closeConnection) {
        stats.injected.closeConnection += 1;
        kill();
        return;
      }
      if (data.errorCode !== undefined) {
        stats.injected.errorCode += 1;
        const labels = data.errorLabels !== undefined ? data.errorLabels : mongoLabels(body, data.errorCode);
        const out = {
          ok: new Double(0),
          errmsg: "Failing command via 'failCommand' failpoint",
          code: new Int32(data.errorCode),
          codeName: CODE_NAMES[data.errorCode] || `Location${data.errorCode}`,
        };
        if (labels.length) out.errorLabels = labels;
        reply(head, out);
        return;
      }
      if (data.writeErrors) {
        stats.injected.writeErrors += 1;
        const writeErrors = data.writeErrors.map((e) => ({ index: new Int32(e.index || 0), code: new Int32(e.code), errmsg: e.errmsg || CODE_NAMES[e.code] || 'injected' }));
        const out = { n: new Int32(0), writeErrors, ok: new Double(1) };
        if (data.writeConcernError) {
          stats.injected.writeConcernError += 1;
          out.writeConcernError = data.writeConcernError;
        }
        reply(head, out);
        return;
      }
      if (data.partialCommit !== undefined && name === 'insert') {
        const all = op.sequences.documents || [];
        const k = Math.min(all.length, data.partialCommit === true ? Math.floor(all.length / 2) : data.partialCommit);
        stats.injected.partialCommit += 1;
        if (k === 0) {
          reply(head, PARTIAL_COMMIT_REPLY());
          return;
        }
        conn.pending.set(head.requestId, { body, data });
        upstream.write(wire.encodeOpMsg({ requestId: head.requestId, responseTo: 0, flags: op.flags, body, sequences: { documents: all.slice(0, k) } }));
        return;
      }
      conn.pending.set(head.requestId, { body, data });
      upstream.write(msg);
    };
    const fromClient = wire.messageSplitter((msg) => {
      chain = chain.then(() => onRequest(msg)).catch(kill);
    });
    client.on('data', (chunk) => guarded(fromClient, chunk));

    const fromServer = wire.messageSplitter((msg) => {
      const responseTo = msg.readInt32LE(8);
      const pending = conn.pending.get(responseTo);
      if (!pending) {
        client.write(msg);
        return;
      }
      conn.pending.delete(responseTo);
      const { body, data } = pending;
      if (data.stallReply) {
        // The command ran; its answer never arrives. The connection stays
        // open (a half-dead peer) until released, closed, or stallMs.
        stats.injected.stallReply += 1;
        stalled.add(conn);
        if (data.stallMs !== undefined) after(data.stallMs).then(kill);
        return;
      }
      if (data.partialCommit !== undefined) {
        // The first k are committed; the answer names none of them.
        const head = wire.header(msg);
        client.write(
          wire.encodeOpMsg({
            requestId: head.requestId,
            responseTo: head.responseTo,
            body: PARTIAL_COMMIT_REPLY(),
          }),
        );
        return;
      }
      if (data.dropReplyAfterExecute) {
        stats.injected.dropReplyAfterExecute += 1;
        kill(); // the server has answered, so the command is committed
        return;
      }
      if (data.writeConcernError) {
        stats.injected.writeConcernError += 1;
        const head = wire.header(msg);
        const parsed = wire.parseOpMsg(msg);
        const out = parsed.body;
        out.writeConcernError = data.writeConcernError;
        const labels = data.errorLabels !== undefined ? data.errorLabels : mongoLabels(body, undefined, data.writeConcernError.code);
        if (labels.length) out.errorLabels = labels;
        else delete out.errorLabels;
        client.write(wire.encodeOpMsg({ requestId: head.requestId, responseTo: head.responseTo, flags: parsed.flags, body: out }));
        return;
      }
      client.write(msg);
    });
    upstream.on('data', (chunk) => guarded(fromServer, chunk));
    // A malformed message is the peer's fault; it ends this connection only.
    function guarded(split, chunk) {
      try {
        split(chunk);
      } catch {
        kill();
      }
    }
  }

  const server = net.createServer(handleConnection);
  const listen = (p) =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(p, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  await listen(port);
  const boundPort = server.address().port;

  /** Closes every open connection, as a network partition would. */
  function dropConnections() {
    for (const conn of [...connections]) conn.kill();
  }

  return {
    port: boundPort,
    stats,
    configureFailPoint,
    /** The fail point as configured now (mode turns 'off' when its times run out). */
    get failPoint() {
      return { mode: failPoint.mode, data: failPoint.data, timesEntered: failPoint.timesEntered };
    },
    dropConnections,
    /** Closes connections whose reply is being withheld (stallReply). */
    releaseStalled() {
      for (const conn of [...stalled]) conn.kill();
    },
    get stalledConnections() {
      return stalled.size;
    },
    /**
     * The server goes away for clients: open connections close, new ones are
     * accepted and closed at once, or with `refuse` not accepted at all
     * (ECONNREFUSED: the proxy stops listening until endOutage).
     */
    async startOutage({ refuse = false } = {}) {
      if (outage) return;
      stats.injected.outages += 1;
      outage = { refuse };
      dropConnections();
      if (refuse) await new Promise((resolve) => server.close(() => resolve()));
    },
    async endOutage() {
      if (!outage) return;
      const { refuse } = outage;
      outage = null;
      if (refuse) await listen(boundPort);
    },
    get inOutage() {
      return outage !== null;
    },
    async close() {
      failPoint.mode = 'off';
      dropConnections();
      if (server.listening) await new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

module.exports = { startFailProxy, WRITE_CONCERN_TIMEOUT, CODE_NAMES };
