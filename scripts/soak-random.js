'use strict';

// A small seeded generator (mulberry32) for the fault soak: the same seed
// gives the same schedule and the same choices of orders, so a run that
// found a violation can be replayed (timing still varies between runs).
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer in [min, max]. */
const between = (random, min, max) => min + Math.floor(random() * (max - min + 1));

/** One of `weights`' keys, with probability proportional to its value. */
function weighted(random, weights) {
  const entries = Object.entries(weights).filter(([, w]) => w > 0);
  let r = random() * entries.reduce((s, [, w]) => s + w, 0);
  for (const [key, w] of entries) {
    r -= w;
    if (r < 0) return key;
  }
  return entries[entries.length - 1][0];
}

module.exports = { rng, between, weighted };
