'use strict';

// The soak's checker, in the spirit of Jepsen's: from the history of every
// call (who asked, when, what it was told) and what the database holds at the
// end, decide whether the four promises held. Pure: no I/O, so it can be
// tested on hand-made histories.
//
// Input
//   uploads:   [{ tag, orderId, final: 'resolved'|'failed'|'unsettled',
//                 attempts: [{ start, end, outcome: 'resolved'|'failed'|'unknown',
//                              _id?, version?, name?, code? }] }]
//   deletions: [{ orderId, _id, version, tag, start, end }]  (end: Infinity when unconfirmed)
//   docs:      the collection at the end, [{ _id, orderId, version, tag }]
//
// Times are Date.now() readings taken in different processes. They read one
// clock (the machine's wall clock), so "A ended before B began" across
// processes is decided by comparing them, strictly: equal readings prove no
// order. A wall-clock step during the run would void that; the soak is short.
//
// What "confirmed stored, and not deleted, before its call began" means here:
// an upload W confirms version w when its resolving attempt returns (W.end).
// For a later upload U (U's first attempt began after W.end), w counts unless
// W's document was deleted before U's last attempt ended: a deletion racing
// U's call may legitimately let U reuse a number (the reference design reuses
// a deleted top), so only deletions that certainly came after U are ignored.
// A violation is U stored below a w that counts.

const idOf = (id) => (id === undefined || id === null ? undefined : String(id));

function check({ uploads, deletions, docs }) {
  const violations = [];
  const add = (kind, orderId, detail) => violations.push({ kind, orderId, detail });

  // Every copy that ever existed: what is left plus what the soak deleted.
  const copies = [...docs.map((d) => ({ ...d, deleted: null })), ...deletions.map((x) => ({ _id: x._id, orderId: x.orderId, version: x.version, tag: x.tag, deleted: x }))];
  const copiesByTag = new Map();
  for (const c of copies) {
    if (!copiesByTag.has(c.tag)) copiesByTag.set(c.tag, []);
    copiesByTag.get(c.tag).push(c);
  }
  const uploadByTag = new Map(uploads.map((u) => [u.tag, u]));

  // Promise 1 and 3: resolved => stored exactly once, as told; failed => not stored.
  // A copy is one _id: a settling retry with the same _id may store a
  // document again after the soak deleted it, and that is not a second copy.
  for (const u of uploads) {
    const mine = copiesByTag.get(u.tag) || [];
    const ids = new Set(mine.map((c) => idOf(c._id)));
    const resolved = u.attempts.find((a) => a.outcome === 'resolved');
    if (ids.size > 1) add('stored-twice', u.orderId, { tag: u.tag, ids: [...ids], versions: mine.map((c) => c.version) });
    if (u.final === 'resolved') {
      if (ids.size === 0) add('resolved-not-stored', u.orderId, { tag: u.tag, _id: resolved._id, version: resolved.version });
      else if (!ids.has(idOf(resolved._id))) add('resolved-other-id', u.orderId, { tag: u.tag, told: resolved._id, stored: [...ids] });
      else if (!mine.some((c) => idOf(c._id) === idOf(resolved._id) && c.version === resolved.version)) {
        add('resolved-other-version', u.orderId, { tag: u.tag, told: resolved.version, stored: mine.map((c) => c.version) });
      }
    } else if (u.final === 'failed' && ids.size > 0) {
      // Told "failed" by its last call, yet stored. After an unknown outcome
      // that last call was a settling retry with the _id: its own kind, as it
      // may be the contract's edge (a retry that cannot reach the server)
      // rather than a lost write.
      const last = u.attempts[u.attempts.length - 1];
      const kind = u.attempts.some((a) => a.outcome === 'unknown') ? 'failed-after-unknown-but-stored' : 'failed-but-stored';
      const calls = u.attempts.map((a) => (a.outcome === 'resolved' ? `v${a.version}` : `${a.name}`)).join(' > ');
      add(kind, u.orderId, { tag: u.tag, error: `${last.name} ${last.code}`, calls, versions: mine.map((c) => c.version) });
    } else if (u.final === 'unsettled') {
      add('unsettled', u.orderId, { tag: u.tag, attempts: u.attempts.length });
    }
  }
  for (const c of copies) {
    if (!uploadByTag.has(c.tag)) add('unknown-document', c.orderId, { _id: idOf(c._id), tag: c.tag, version: c.version });
  }

  // Promise 2: versions only go up.
  const deletedAt = new Map(deletions.map((x) => [idOf(x._id), x.start]));
  const confirmedByOrder = new Map(); // orderId -> [{ end, version, _id }]
  for (const u of uploads) {
    const r = u.attempts.find((a) => a.outcome === 'resolved');
    if (!r) continue;
    if (!confirmedByOrder.has(u.orderId)) confirmedByOrder.set(u.orderId, []);
    confirmedByOrder.get(u.orderId).push({ tag: u.tag, end: r.end, version: r.version, _id: idOf(r._id) });
  }
  for (const c of copies) {
    const u = uploadByTag.get(c.tag);
    if (!u || u.attempts.length === 0) continue;
    const began = u.attempts[0].start;
    const ended = u.attempts[u.attempts.length - 1].end;
    let top = null; // the highest version that bounds this copy from below
    for (const w of confirmedByOrder.get(c.orderId) || []) {
      if (w.tag === c.tag || !(w.end < began) || !(c.version < w.version)) continue;
      const del = deletedAt.get(w._id);
      if (del !== undefined && del <= ended) continue;
      if (!top || w.version > top.version) top = w;
    }
    if (top) add('version-went-down', c.orderId, { tag: c.tag, version: c.version, began, below: { tag: top.tag, version: top.version, confirmedAt: top.end } });
  }

  // Promise 4: gapless when nothing is deleted.
  const touched = new Set(deletions.map((x) => x.orderId));
  const versionsByOrder = new Map();
  for (const d of docs) {
    if (!versionsByOrder.has(d.orderId)) versionsByOrder.set(d.orderId, []);
    versionsByOrder.get(d.orderId).push(d.version);
  }
  for (const [orderId, versions] of versionsByOrder) {
    if (touched.has(orderId)) continue;
    const sorted = [...versions].sort((a, b) => a - b);
    if (!sorted.every((v, i) => v === i + 1)) add('not-gapless', orderId, { versions: sorted });
  }

  return violations;
}

/** The order's events in time order, for a violation report. */
function history(orderId, { uploads, deletions, docs }) {
  const events = [];
  for (const u of uploads) {
    if (u.orderId !== orderId) continue;
    for (const a of u.attempts) {
      const told = a.outcome === 'resolved' ? `v${a.version}` : `${a.name}${a.code !== undefined ? ` ${a.code}` : ''}`;
      events.push({ at: a.start, line: `${a.start}..${a.end}  ${u.tag} ${a.outcome} ${told}${a._id ? ` _id ${a._id}` : ''}` });
    }
  }
  for (const x of deletions) {
    if (x.orderId === orderId) events.push({ at: x.start, line: `${x.start}..${x.end}  deleted v${x.version} (${x.tag})` });
  }
  events.sort((a, b) => a.at - b.at);
  const stored = docs
    .filter((d) => d.orderId === orderId)
    .sort((a, b) => a.version - b.version)
    .map((d) => `v${d.version}:${d.tag}`);
  return [...events.map((e) => e.line), `stored at the end: ${stored.join(' ')}`];
}

module.exports = { check, history };
