'use strict';

// Prometheus metrics for an AssetRepository, on a prom-client registry (the
// library Express apps already use). prom-client is an optional peer
// dependency: require this file only where it is installed.
//
//   const { registerMetrics } = require('atomic-asset-version/metrics');
//   registerMetrics(repo, { registry: promClient.register });
const promClient = require('prom-client');

const COUNTERS = [
  ['uploads_total', 'Uploads that reached the database', 'uploads'],
  ['uploads_succeeded_total', 'Uploads stored with a version', 'succeeded'],
  ['uploads_failed_total', 'Uploads that failed after reaching the database, certainly not stored', 'failed'],
  ['uploads_outcome_unknown_total', 'Uploads that may or may not be stored (OutcomeUnknownError)', 'outcomeUnknown'],
  ['retries_total', 'Attempts lost to a concurrent writer', 'retries'],
  ['failed_after_max_retries_total', 'Uploads that collided on every attempt', 'failedAfterMaxRetries'],
  ['validation_errors_total', 'Uploads refused before any write', 'validationErrors'],
  ['batches_total', 'insertMany batches sent', 'batches'],
];

/**
 * @param {import('./repository').AssetRepository} repo
 * @param {{ registry?: promClient.Registry, prefix?: string, labels?: Record<string, string> }} [options]
 * @returns {() => void} unregisters the metrics
 */
function registerMetrics(repo, { registry = promClient.register, prefix = 'asset_version_', labels = {} } = {}) {
  const labelNames = Object.keys(labels);
  const metrics = COUNTERS.map(
    ([name, help, field]) =>
      new promClient.Counter({
        name: prefix + name,
        help,
        labelNames,
        registers: [registry],
        collect() {
          this.reset();
          this.inc(labels, repo.stats()[field]);
        },
      }),
  );
  metrics.push(
    new promClient.Gauge({
      name: `${prefix}queued_uploads`,
      help: 'Uploads waiting for a batch of their order',
      labelNames,
      registers: [registry],
      collect() {
        this.set(labels, repo.stats().queued);
      },
    }),
  );
  const latency = new promClient.Histogram({
    name: `${prefix}upload_duration_seconds`,
    help: 'Time from createWithAtomicVersion() to its result',
    labelNames: [...labelNames, 'outcome'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  metrics.push(latency);
  const stop = repo.observe(({ seconds, outcome }) => latency.observe({ ...labels, outcome }, seconds));
  return () => {
    stop();
    for (const m of metrics) registry.removeSingleMetric(m.name);
  };
}

module.exports = { registerMetrics };
