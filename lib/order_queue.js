'use strict';

// Uploads waiting for a write, and the batches they go in. Main thread only.
//
// Every order's uploads wait in their own FIFO. When a batch may start, it
// takes every waiting upload of every order that has no batch in flight
// (call order within an order, orders in the order they started waiting),
// up to maxBatchSize: one round trip carries many orders. An order is never
// in two batches at once, so uploads of one process never collide with each
// other. Nothing lingers: an upload that finds a batch slot free goes at once,
// alone if it is alone; batches form only from uploads already waiting.

class OrderQueue {
  #waiting = new Map(); // orderKey -> jobs; Map order = the order they started waiting
  #busy = new Set(); // orders with a batch in flight
  #batches = 0; // batches in flight
  #queued = 0; // uploads waiting
  #options;

  /**
   * @param {object} options
   * @param {number} options.maxBatchSize uploads per batch
   * @param {number} options.maxBatchBytes bytes per batch (jobs' `bytes`), so
   *   that a batch of big uploads stays one Buffer of reasonable size
   * @param {() => number} options.maxBatches batches in flight at once
   * @param {boolean} options.coalesce false: every call is a batch of its own,
   *   in call order, whatever its order (two of one order may then collide)
   * @param {(jobs: object[]) => Promise<void>} options.run sends one batch; settles its jobs
   * @param {(job: object) => boolean} options.refuse true when a waiting job must
   *   not be sent (it then is given to `reject`); checked as it leaves the queue
   * @param {(job: object) => void} options.reject
   */
  constructor(options) {
    this.#options = options;
  }

  /** Queues a job ({ key, count, size, … }: `count` uploads, `size` bytes); the caller settles it through `run`. */
  push(job) {
    // Without coalescing every call is a batch of its own: one FIFO for all.
    const key = this.#options.coalesce ? job.key : '';
    let jobs = this.#waiting.get(key);
    if (!jobs) this.#waiting.set(key, (jobs = []));
    jobs.push(job);
    this.#queued += job.count;
    this.#dispatch();
  }

  /** Uploads waiting for a batch. */
  get queued() {
    return this.#queued;
  }

  #dispatch() {
    while (this.#batches < this.#options.maxBatches()) {
      const batch = this.#take();
      if (batch.length === 0) return;
      this.#send(batch);
    }
  }

  #take() {
    const batch = [];
    let size = 0;
    let bytes = 0;
    const coalesce = this.#options.coalesce;
    const limit = coalesce ? this.#options.maxBatchSize : 1;
    for (const [key, jobs] of this.#waiting) {
      if (coalesce && this.#busy.has(key)) continue;
      let took = false;
      while (jobs.length > 0) {
        const job = jobs[0];
        if (this.#options.refuse(job)) {
          jobs.shift();
          this.#queued -= job.count;
          this.#options.reject(job);
          continue;
        }
        // An item group (createMany) is never split; a group larger than
        // a limit goes alone.
        if (size > 0 && (size + job.count > limit || bytes + job.size > this.#options.maxBatchBytes)) break;
        jobs.shift();
        this.#queued -= job.count;
        batch.push(job);
        size += job.count;
        bytes += job.size;
        took = true;
      }
      if (jobs.length === 0) this.#waiting.delete(key);
      if (took && coalesce) this.#busy.add(key);
      if (size >= limit || bytes >= this.#options.maxBatchBytes) break;
    }
    return batch;
  }

  #send(batch) {
    this.#batches++;
    const keys = this.#options.coalesce ? [...new Set(batch.map((job) => job.key))] : [];
    this.#options.run(batch).finally(() => {
      for (const key of keys) this.#busy.delete(key);
      // The slot is given back on the next turn of the loop, not now: the
      // callers this batch just answered queue their next uploads a few
      // promise hops later, and should find the slot still taken, then all
      // go in the next batch, rather than the first of them taking it alone.
      setImmediate(() => {
        this.#batches--;
        this.#dispatch();
      });
    });
  }
}

module.exports = { OrderQueue };
