'use strict';

// Which FerretDB backend this run is on, and wrappers for tests that only
// one backend can run. The global setup sets AAV_BACKEND for the server it
// starts; AAV_POSTGRESQL_URL only when it started the PostgreSQL too, so a
// test may start more front ends over it.

/** 'sqlite', 'postgresql', or null: MongoDB, or a FerretDB we did not start. */
const backend = process.env.AAV_SERVER_KIND === 'ferretdb' ? process.env.AAV_BACKEND || null : null;

const SKIP_REASON = 'PostgreSQL only: run `npm test` without AAV_BACKEND=sqlite (skipped on SQLite and when MONGODB_URI names another server)';

/** describe() on a PostgreSQL this run started, reported skipped (with why) elsewhere. */
function describeOnPostgres(name, fn) {
  return process.env.AAV_POSTGRESQL_URL ? describe(name, fn) : describe.skip(`${name} [${SKIP_REASON}]`, fn);
}

/** describe() on a FerretDB this run started (either backend), reported skipped elsewhere. */
function describeOnFerretDB(name, fn) {
  return backend ? describe(name, fn) : describe.skip(`${name} [FerretDB started by the test run only]`, fn);
}

/**
 * startFerretDB() options for a front end of a test's own: on PostgreSQL, a
 * database of its own on the run's cluster (FerretDB v1 fails a front end's
 * first request if another front end drops a database while it loads the
 * catalogue: test files run side by side do). Pass the same options again to
 * restart it on its data. Elsewhere, nothing.
 */
function ownFrontEnd(label) {
  if (!process.env.AAV_POSTGRESQL_URL) return {};
  const { createDatabase } = require('../../scripts/postgres');
  const name = `fe_${label}_${process.pid}_${Date.now().toString(36)}`.replace(/\W/g, '_').slice(0, 60);
  return { postgresqlUrl: createDatabase(process.env.AAV_POSTGRESQL_URL, name) };
}

module.exports = { backend, describeOnPostgres, describeOnFerretDB, ownFrontEnd, SKIP_REASON };
