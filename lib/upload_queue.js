'use strict';

// Everything between a validated upload and its caller's answer, main thread
// only: the uploads waiting per order, the batches in flight and their run
// through the addon, finishing each upload (counts, observers, the caller's
// answer), fail-fast after a connection failure, and close. The facade
// (lib/repository.js) validates a call and hands it here; docs/queues.md puts
// this queue beside the addon's two (the scheduler's waiting list and timers,
// the process-wide threadpool budget).
//
// Every order's uploads wait in their own FIFO. When a batch may start, it
// takes every waiting upload of every order that has no batch in flight
// (call order within an order, orders in the order they started waiting),
// up to maxBatchSize: one round trip carries many orders. An order is never
// in two batches at once, so uploads of one process never collide with each
// other. Nothing lingers: an upload that finds a batch slot free goes at once,
// alone if it is alone; batches form only from uploads already waiting.
const { performance } = require('perf_hooks');
const native = require('./native');
const { BatchResults } = require('./batch_results');
const { Stats } = require('./stats');
const { AssetError, OutcomeUnknownError, RepositoryClosedError, errorForUpload } = require('./errors');
const { withKeyDetails } = require('./duplicate_key');

// A batch's documents travel as one Buffer (endToEnd), so batches of big
// uploads are cut by bytes too. Past this, one round trip saves nothing.
const MAX_BATCH_BYTES = 64 * 1024 * 1024;

class UploadQueue {
  #waiting = new Map(); // orderKey -> jobs; Map order = the order they started waiting
  #busy = new Set(); // orders with a batch in flight
  #batches = 0; // batches in flight
  #queued = 0; // uploads waiting
  #slots = 0; // batches the addon runs at once, process-wide; read once
  #maxBatchBytes;
  #options;
  #fields;
  #nativeRepository; // () => the addon's repository, or null before it exists
  #ready; // () => a promise that the index is ensured
  #counters = new Stats();
  #observers = new Set(); // upload listeners, for metrics
  #finishOne; // answers a single upload's caller (one function per queue, not per upload)
  // Fail-fast: uploads queued before the server was found unreachable fail
  // with that error as they leave the queue, instead of each waiting out a
  // server-selection timeout.
  #connectionFailures = 0;
  #connectionError = null;
  // Close: calls accepted and not yet settled (uploads, and the facade's
  // index and version reads, through track()); close() waits for them.
  #pending = 0;
  #drained = null; // resolves close()'s wait when #pending reaches 0
  #closing = null;

  /**
   * @param {object} o
   * @param {{ maxBatchSize: number, coalesce: boolean, maxRetries: number, recoveryTimeMS: number }} o.options
   *   coalesce false: every call is a batch of its own, in call order,
   *   whatever its order (two of one order may then collide)
   * @param {object} o.fields the app's field names (asset_input.js fieldPlan)
   * @param {() => object|null} o.nativeRepository the addon's repository
   * @param {() => Promise<unknown>} o.ready the index, before a batch is sent
   * @param {number} [o.maxBatches] batches in flight at once; default: the
   *   addon's threadpool slots
   * @param {number} [o.maxBatchBytes] bytes per batch
   */
  constructor({ options, fields, nativeRepository, ready, maxBatches, maxBatchBytes = MAX_BATCH_BYTES }) {
    this.#options = options;
    this.#slots = maxBatches || 0;
    this.#maxBatchBytes = maxBatchBytes;
    this.#fields = fields;
    this.#nativeRepository = nativeRepository;
    this.#ready = ready;
    this.#finishOne = (job, results, i) => {
      const error = results.error(i);
      try {
        if (error === undefined) job.resolve(results.document(i, job.view, fields));
        else job.reject(uploadError(error, job.orderId, fields));
      } catch (err) {
        job.reject(err);
      }
    };
  }

  /** Throws RepositoryClosedError once close() was called. */
  assertOpen() {
    if (this.#closing) {
      throw new RepositoryClosedError('the repository is closed', { code: 'ERR_ASSET_CLOSED' });
    }
  }

  /**
   * One upload (asset_input.js prepareUpload's { bytes, view }) of the order
   * `key`; resolves with its stored document, or rejects with its error.
   */
  add(key, orderId, upload, callerId) {
    const job = new Job(key, 1, upload.bytes.length, this.#finishOne, this.#connectionFailures);
    job.bytes = upload.bytes;
    job.callerId = callerId;
    job.view = upload.view;
    job.orderId = orderId;
    return new Promise((resolve, reject) => {
      job.resolve = resolve;
      job.reject = reject;
      this.#push(job);
    });
  }

  /**
   * Uploads of one order that go in one batch, in order, never split
   * (createManyWithAtomicVersion, model mode). Resolves with one settled
   * result per upload: { status: 'fulfilled', value: stored document } or
   * { status: 'rejected', reason: its error }. Without `views` (model mode)
   * each document is decoded from its stored bytes.
   */
  addGroup(key, orderId, docs, callerIds, views = null) {
    return new Promise((resolve) => {
      const finish = (job, results, first) => {
        resolve(
          docs.map((_, i) => {
            const error = results.error(first + i);
            try {
              return error === undefined
                ? { status: 'fulfilled', value: results.document(first + i, views === null ? null : views[i], this.#fields) }
                : { status: 'rejected', reason: uploadError(error, orderId, this.#fields) };
            } catch (err) {
              return { status: 'rejected', reason: err };
            }
          }),
        );
      };
      this.#push(Job.group(key, docs, callerIds, finish, this.#connectionFailures));
    });
  }

  /** Counts `promise`, a call accepted outside the queue, as pending until it settles: close() waits for it. */
  track(promise) {
    this.#pending++;
    const done = () => this.#settled();
    promise.then(done, done);
    return promise;
  }

  /** Uploads waiting for a batch. */
  get queued() {
    return this.#queued;
  }

  /** Counts a call refused before it reached the queue. */
  refused(err) {
    if (err && err.name === 'ValidationError') this.#counters.validationErrors++;
  }

  observe(fn) {
    this.#observers.add(fn);
    return () => this.#observers.delete(fn);
  }

  stats() {
    return this.#counters.snapshot({ queued: this.#queued, threadpool: native.threadpool() });
  }

  /**
   * Refuses new calls (assertOpen), lets every accepted one finish, then
   * closes the addon's repository. Idempotent: every call gets one promise.
   */
  close() {
    if (!this.#closing) {
      this.#closing = (async () => {
        while (this.#pending > 0) await new Promise((resolve) => (this.#drained = resolve));
        const repository = this.#nativeRepository();
        if (repository) await repository.close();
      })();
    }
    return this.#closing;
  }

  // ---- waiting and batching -------------------------------------------------

  #push(job) {
    this.#pending++;
    // Without coalescing every call is a batch of its own: one FIFO for all.
    const key = this.#options.coalesce ? job.key : '';
    let jobs = this.#waiting.get(key);
    if (!jobs) this.#waiting.set(key, (jobs = []));
    jobs.push(job);
    this.#queued += job.count;
    this.#dispatch();
  }

  #maxBatches() {
    // As many batches in flight as the addon may run at once: more would
    // only wait in its queue, uploads that could have joined a batch.
    return this.#slots || (this.#slots = Math.max(1, native.threadpool().slots));
  }

  #dispatch() {
    while (this.#batches < this.#maxBatches()) {
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
        if (job.failuresSeen !== this.#connectionFailures) {
          // Fail-fast: queued before the server was found unreachable.
          jobs.shift();
          this.#queued -= job.count;
          this.#failFast(job);
          continue;
        }
        // An item group (createMany) is never split; a group larger than
        // a limit goes alone.
        if (size > 0 && (size + job.count > limit || bytes + job.size > this.#maxBatchBytes)) break;
        jobs.shift();
        this.#queued -= job.count;
        batch.push(job);
        size += job.count;
        bytes += job.size;
        took = true;
      }
      if (jobs.length === 0) this.#waiting.delete(key);
      if (took && coalesce) this.#busy.add(key);
      if (size >= limit || bytes >= this.#maxBatchBytes) break;
    }
    return batch;
  }

  #send(batch) {
    this.#batches++;
    const keys = this.#options.coalesce ? [...new Set(batch.map((job) => job.key))] : [];
    this.#run(batch).finally(() => {
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

  // ---- running and finishing ------------------------------------------------

  async #run(jobs) {
    let results;
    try {
      const { bytes, ends } = endToEnd(jobs);
      await this.#ready();
      this.#counters.batches++;
      results = new BatchResults(await this.#nativeRepository().insertBatch(bytes, ends, this.#options.maxRetries, this.#options.recoveryTimeMS));
    } catch (err) {
      // Refused before anything was sent (out of memory for the batch, the
      // index, a closed repository), or, if the addon says so, results that
      // could not be handed over. Anything that is not one of our errors
      // proves nothing about what was sent: outcome unknown.
      const error = err instanceof AssetError ? err : resultsLost(err);
      const callerIds = jobs.flatMap((job) => Array.from({ length: job.count }, (_, i) => job.callerIdAt(i)));
      results = BatchResults.failed(callerIds.length, (i) => (error.name === 'OutcomeUnknownError' ? error : beforeLookup(error, callerIds[i])));
    }
    const unreachable = results.findError((e) => e.name === 'ConnectionError');
    if (unreachable) {
      this.#connectionFailures++;
      this.#connectionError = unreachable;
    }
    this.#finish(jobs, results);
  }

  /**
   * Never sent: certainly not stored by this call, so failing it is honest;
   * unless the caller gave the _id (a retry), which an earlier call may have
   * stored.
   */
  #failFast(job) {
    this.#finish(
      [job],
      BatchResults.failed(job.count, (i) => beforeLookup(this.#connectionError, job.callerIdAt(i))),
    );
  }

  /** Counts and hands each job its results; jobs hold the results' uploads in order. */
  #finish(jobs, results) {
    let at = 0;
    for (const job of jobs) {
      for (let i = at; i < at + job.count; i++) {
        const error = results.error(i);
        const retries = results.retries(i);
        this.#counters.record(error, retries);
        if (this.#observers.size > 0) this.#notify(error, retries, job.started);
      }
      job.finish(job, results, at);
      at += job.count;
      this.#settled();
    }
  }

  #settled() {
    if (--this.#pending === 0 && this.#drained) {
      this.#drained();
      this.#drained = null;
    }
  }

  #notify(error, retries, started) {
    const kind = error && error.name;
    const outcome = !error ? 'stored' : kind === 'OutcomeUnknownError' ? 'unknown' : 'failed';
    const event = { seconds: (performance.now() - started) / 1000, ok: !error, outcome, retries };
    for (const fn of this.#observers) {
      try {
        fn(event);
      } catch (err) {
        // A listener's bug must not turn a stored upload into a rejection.
        process.emitWarning(`an observe() listener threw: ${err && err.message}`, { code: 'ATOMIC_ASSET_VERSION_OBSERVER' });
      }
    }
  }
}

/** The batch's documents end to end, and where each ends, as insertBatch takes them. */
function endToEnd(jobs) {
  let count = 0;
  let size = 0;
  for (const job of jobs) {
    count += job.count;
    for (let i = 0; i < job.count; i++) size += job.bytesAt(i).length;
  }
  const bytes = Buffer.allocUnsafe(size);
  const ends = new Float64Array(count);
  let at = 0;
  let i = 0;
  for (const job of jobs) {
    for (let j = 0; j < job.count; j++) {
      const doc = job.bytesAt(j);
      bytes.set(doc, at);
      at += doc.length;
      ends[i++] = at;
    }
  }
  return { bytes, ends };
}

/**
 * Uploads of one order waiting for a batch, and how to answer their callers:
 * once the batch is answered, finish(job, results, first) is called with its
 * BatchResults and the index of the first of them. A single upload's job
 * also holds its promise's functions, so it waits as one object with no
 * closure of its own: a burst keeps thousands waiting, and the garbage
 * collector pays for each object that survives.
 */
class Job {
  constructor(key, count, size, finish, failuresSeen) {
    this.key = key;
    this.count = count; // uploads
    this.size = size; // their bytes
    this.finish = finish;
    this.started = performance.now();
    this.failuresSeen = failuresSeen; // connection failures seen when queued
    // A single upload: its BSON bytes, its caller's _id, its view
    // (lib/batch_results.js), and its caller's promise.
    this.bytes = null;
    this.callerId = undefined;
    this.view = null;
    this.orderId = undefined;
    this.resolve = null;
    this.reject = null;
    // A group (createMany, model mode): the same per upload, as arrays.
    this.docs = null;
    this.callerIds = null;
  }

  static group(key, docs, callerIds, finish, failuresSeen) {
    const job = new Job(
      key,
      docs.length,
      docs.reduce((sum, doc) => sum + doc.length, 0),
      finish,
      failuresSeen,
    );
    job.docs = docs;
    job.callerIds = callerIds;
    return job;
  }

  bytesAt(i) {
    return this.docs === null ? this.bytes : this.docs[i];
  }

  callerIdAt(i) {
    return this.callerIds === null ? this.callerId : this.callerIds[i];
  }
}

/**
 * A failure before the upload reached the server. An upload with the
 * caller's _id may be stored by an earlier call, which this one never got to
 * look up: its outcome is unknown, not failed.
 */
function beforeLookup(error, _id) {
  if (_id === undefined) return error;
  return new OutcomeUnknownError(`the upload could not be looked up by its _id (${error.message}); call again with the same _id to settle it`, {
    code: 'ERR_ASSET_OUTCOME_UNKNOWN',
    reason: 'NOT_LOOKED_UP',
    retriable: false,
    _id,
    cause: error,
  });
}

/** An error of this upload's own, from what its batch reported. */
/** A batch whose outcome could not be read (the addon rejected with something that is not an AssetError). */
function resultsLost(cause) {
  return new OutcomeUnknownError("the batch's results could not be handed to JavaScript: its uploads may or may not be stored", {
    code: 'ERR_ASSET_OUTCOME_UNKNOWN',
    reason: 'RESULTS_LOST',
    retriable: false,
    cause,
  });
}

function uploadError(error, orderId, fields) {
  return withKeyDetails(errorForUpload(error, orderId), orderId, fields);
}

module.exports = { UploadQueue, beforeLookup };
