'use strict';

// Remembers, per order, the version this process expects to be free next, so
// the next write can skip the read. A wrong guess costs one duplicate-key
// error and a read; it can never leave a gap, because a guess is never above
// what this process itself last wrote plus one. Bounded: least recently used
// orders are forgotten first (a Map iterates in insertion order).
class VersionMemory {
  constructor(capacity) {
    this.capacity = capacity;
    this.map = new Map();
  }

  next(orderKey) {
    const v = this.map.get(orderKey);
    if (v === undefined) return 0;
    this.map.delete(orderKey);
    this.map.set(orderKey, v);
    return v;
  }

  remember(orderKey, nextVersion) {
    if (this.capacity <= 0) return;
    this.map.delete(orderKey);
    this.map.set(orderKey, nextVersion);
    if (this.map.size > this.capacity) this.map.delete(this.map.keys().next().value);
  }

  forget(orderKey) {
    this.map.delete(orderKey);
  }

  get size() {
    return this.map.size;
  }
}

module.exports = { VersionMemory };
