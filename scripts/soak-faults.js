'use strict';

// The fault schedule of the soak (scripts/soak.js): every step, a seeded
// choice among the faults below, then a seeded pause. Steps run one after
// another, so a deletion never races a server kill (its outcome is then
// always known); the fail point's faults wait in the proxy for the next
// matching insert and so overlap with whatever comes next.
const { WRITE_CONCERN_TIMEOUT } = require('../test/support/fail-proxy');
const { between, weighted } = require('./soak-random');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * @param {object} ctx
 *   random, proxy, server ({ canKill, kill(downMs) }), direct (a Db on the
 *   server itself, not through the proxy), collection, deletable (order ids),
 *   deletions (array to append to), counts (object to count in),
 *   selectionTimeoutMS, socketTimeoutMS, log
 */
function faults(ctx) {
  const { random, proxy, server, counts } = ctx;
  const failInserts = (times, data) => proxy.configureFailPoint({ mode: { times }, data: { failCommands: ['insert'], ...data } });
  const longerThanSelection = () => between(random, ctx.selectionTimeoutMS + 100, ctx.selectionTimeoutMS * 2 + 500);

  async function outage(ms) {
    await proxy.startOutage({ refuse: random() < 0.5 });
    await sleep(ms);
    await proxy.endOutage();
  }

  const steps = {
    async kill() {
      // Sometimes shorter than server selection (uploads ride it out),
      // sometimes longer (they fail, and the server comes back later).
      await server.kill(between(random, 200, ctx.selectionTimeoutMS * 2 + 1000));
    },
    async dropReply() {
      failInserts(between(random, 1, 3), { dropReplyAfterExecute: true });
    },
    async dropReplyThenAway() {
      // The first item: a committed insert whose reply is lost,
      // then the server is away longer than serverSelectionTimeoutMS, so
      // the recovery read cannot run either.
      const before = proxy.stats.injected.dropReplyAfterExecute;
      failInserts(1, { dropReplyAfterExecute: true });
      const deadline = Date.now() + 3000;
      while (proxy.stats.injected.dropReplyAfterExecute === before && Date.now() < deadline) await sleep(2);
      if (server.canKill && random() < 0.5) await server.kill(longerThanSelection());
      else await outage(longerThanSelection());
    },
    async stall() {
      failInserts(between(random, 1, 2), { stallReply: true, stallMs: ctx.socketTimeoutMS + between(random, 500, 2000) });
    },
    async outage() {
      await outage(longerThanSelection());
    },
    async writeConcernError() {
      failInserts(between(random, 1, 3), { writeConcernError: WRITE_CONCERN_TIMEOUT });
    },
    async labelled112() {
      const labels = [['TransientTransactionError'], ['RetryableWriteError'], []][between(random, 0, 2)];
      failInserts(between(random, 1, 3), { errorCode: 112, errorLabels: labels });
    },
    async writeErrors112() {
      failInserts(1, { writeErrors: [{ index: 0, code: 112, errmsg: 'WriteConflict' }] });
    },
    async closeConnection() {
      failInserts(1, { closeConnection: true });
    },
    async partialCommit() {
      // FerretDB's ok: 0 after inserting one by one: half committed, none named.
      failInserts(between(random, 1, 3), { partialCommit: true });
    },
    async concernWithWriteErrors() {
      // A write error (a duplicate to retry, or a refusal of that upload) and
      // a writeConcernError in one reply.
      const code = random() < 0.5 ? 11000 : 2;
      failInserts(between(random, 1, 2), { writeErrors: [{ index: 0, code }], writeConcernError: WRITE_CONCERN_TIMEOUT });
    },
    async dropOnValue() {
      // The connection closes on one upload's value, as FerretDB does on a type it lacks.
      failInserts(between(random, 1, 2), { closeConnection: true, onlyIfContains: MARKED });
    },
    async delete() {
      // Half the time a hot order, else any deletable order that has assets.
      const hot = ctx.deletable.filter((o) => o.startsWith('hot-'));
      const candidates = random() < 0.5 ? hot : (await ctx.direct.collection(ctx.collection).distinct('orderId', { orderId: { $in: ctx.deletable } })).sort();
      if (candidates.length === 0) return false;
      const orderId = candidates[Math.floor(random() * candidates.length)];
      const docs = await ctx.direct
        .collection(ctx.collection)
        .find({ orderId }, { projection: { _id: 1, version: 1, tag: 1 } })
        .sort({ version: 1 })
        .toArray();
      if (docs.length === 0) return false;
      const r = random();
      // The top (a number the reference design reuses), the bottom (a hole
      // under the rest), or any.
      const victim = r < 0.3 ? docs[docs.length - 1] : r < 0.6 ? docs[0] : docs[Math.floor(random() * docs.length)];
      const entry = { orderId, _id: String(victim._id), version: victim.version, tag: victim.tag, start: Date.now(), end: Infinity };
      ctx.deletions.push(entry);
      const res = await ctx.direct.collection(ctx.collection).deleteOne({ _id: victim._id });
      entry.end = Date.now();
      if (res.deletedCount !== 1) ctx.deletions.splice(ctx.deletions.indexOf(entry), 1);
      return res.deletedCount === 1;
    },
  };

  // Faults that take the server away (kill, outage, dropReplyThenAway) last
  // 1.6-4 s each; these weights and pauses keep it away about a sixth of the
  // time, so uploads also run, conflict and get deleted between faults.
  const weights = {
    kill: server.canKill ? 1 : 0,
    dropReply: 3,
    dropReplyThenAway: 2,
    stall: 2,
    outage: 1,
    writeConcernError: 2,
    labelled112: 2,
    writeErrors112: 1,
    closeConnection: 1,
    partialCommit: 2,
    concernWithWriteErrors: 1,
    dropOnValue: 1,
    delete: 6,
  };

  /** Runs steps until `until`; every step is bounded, so this ends soon after. */
  return async function run(until) {
    while (Date.now() < until) {
      const name = weighted(random, weights);
      try {
        const done = await steps[name]();
        if (done !== false) counts[name] = (counts[name] || 0) + 1;
      } catch (err) {
        if (err.fatal) throw err;
        // A step that fails (the direct connection timing out, say) is
        // reported, never fatal: the soak goes on and still checks.
        counts.stepErrors = (counts.stepErrors || 0) + 1;
        ctx.log(`fault step ${name} failed: ${err.message}`);
      }
      await sleep(between(random, 300, 2000));
    }
  };
}

/** The value some uploads carry, for dropOnValue. */
const MARKED = 'soak-marked-value';

module.exports = { faults, MARKED };
