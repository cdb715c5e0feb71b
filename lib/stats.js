'use strict';

// The figures the reference design says to monitor, counted per repository.
class Stats {
  constructor() {
    this.uploads = 0; // uploads that reached the database
    this.succeeded = 0;
    this.failed = 0; // certainly not stored
    this.outcomeUnknown = 0; // may or may not be stored: OutcomeUnknownError
    this.retries = 0; // attempts lost to a concurrent writer, summed over uploads
    this.retried = 0; // uploads that needed at least one retry
    this.failedAfterMaxRetries = 0;
    this.validationErrors = 0; // refused before any write
    this.batches = 0; // native insertMany batches
  }

  /** One upload that reached a batch: its AssetError (undefined when stored) and retries. */
  record(error, retries = 0) {
    this.uploads++;
    this.retries += retries;
    if (retries > 0) this.retried++;
    const kind = error && error.name;
    if (kind === 'OutcomeUnknownError') {
      this.outcomeUnknown++;
    } else if (error) {
      this.failed++;
      if (error.reason === 'RETRIES_EXHAUSTED') this.failedAfterMaxRetries++;
    } else {
      this.succeeded++;
    }
  }

  snapshot(extra) {
    return {
      uploads: this.uploads,
      succeeded: this.succeeded,
      failed: this.failed,
      outcomeUnknown: this.outcomeUnknown,
      retries: this.retries,
      retryRate: this.uploads ? this.retried / this.uploads : 0,
      avgRetries: this.uploads ? this.retries / this.uploads : 0,
      failedAfterMaxRetries: this.failedAfterMaxRetries,
      validationErrors: this.validationErrors,
      batches: this.batches,
      ...extra,
    };
  }
}

module.exports = { Stats };
