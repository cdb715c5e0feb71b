'use strict';

// Stops what the global setup started, FerretDB before the PostgreSQL under it.
module.exports = async () => {
  for (const server of globalThis.__AAV_SERVERS__ || []) await server.stop();
};
