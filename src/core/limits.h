/* The limits the addon and lib/ check against: defined here and nowhere
 * else. napi/binding.c exports AAV_LIMITS as the frozen `binding.limits`
 * object; lib/options.js and lib/asset_input.js read them from there. */
#ifndef LIMITS_H
#define LIMITS_H

#include <stdint.h>

/* MongoDB's own limits: the server refuses deeper documents and larger ones. */
#define AAV_LIMIT_MAX_DEPTH 100
#define AAV_LIMIT_MAX_BSON_SIZE (16 * 1024 * 1024)
/* Room the stored document needs beyond the caller's fields: _id, version,
 * versionLabel, createdAt, updatedAt with their keys, rounded up. */
#define AAV_LIMIT_STORED_OVERHEAD 128
/* Uploads one batch may hold: the server's maxWriteBatchSize. */
#define AAV_LIMIT_MAX_BATCH 100000
/* Conflicts one upload may lose before it fails (option maxRetries). */
#define AAV_LIMIT_MAX_RETRIES 1000
/* How long a lost reply may take to settle (option recoveryTimeMS): a day. */
#define AAV_LIMIT_MAX_RECOVERY_MS 86400000
/* Versions are JavaScript numbers: exact up to 2^53 - 1. */
#define AAV_LIMIT_MAX_VERSION INT64_C(9007199254740991)
/* Bytes in one of the app's field names (option "fields"): then
 * "<order>_1_<version>_1" fits an index name buffer of 128. */
#define AAV_LIMIT_MAX_FIELD_NAME 60

/* name in binding.limits, value: the table napi/binding.c exports. */
#define AAV_LIMITS(X)                                                                    \
  X(maxDepth, AAV_LIMIT_MAX_DEPTH)                                                       \
  X(maxBsonSize, AAV_LIMIT_MAX_BSON_SIZE)                                                \
  X(storedOverhead, AAV_LIMIT_STORED_OVERHEAD)                                           \
  X(maxBatch, AAV_LIMIT_MAX_BATCH)                                                       \
  X(maxRetries, AAV_LIMIT_MAX_RETRIES)                                                   \
  X(maxRecoveryMs, AAV_LIMIT_MAX_RECOVERY_MS)                                            \
  X(maxVersion, AAV_LIMIT_MAX_VERSION)                                                   \
  X(maxFieldName, AAV_LIMIT_MAX_FIELD_NAME)

#endif
