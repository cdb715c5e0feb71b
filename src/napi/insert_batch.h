/* insertBatch(bytes, ends, maxRetries, recoveryMs), a NativeRepository method: see
 * insert_batch.c. Main thread. */
#ifndef INSERT_BATCH_H
#define INSERT_BATCH_H

#include <node_api.h>

/* insertBatch's `items`: this many numbers per upload, at these offsets. */
enum {
  BATCH_ITEM_VERSION,    /* its version; 0 when not stored */
  BATCH_ITEM_BUILT,      /* 1: stored as this batch built it (its createdAt is
                            below); 0: read back from the server, or not stored */
  BATCH_ITEM_CREATED_MS, /* createdAt and updatedAt, in ms, when built */
  BATCH_ITEM_ATTEMPTS,   /* attempts it took part in */
  BATCH_ITEM_RETRIES,    /* of those, lost to a concurrent writer */
  BATCH_ITEM_DOC_END,    /* its stored document ends here in `docs` (it starts
                            where the previous one ended) */
  BATCH_ITEM_FIELDS
};

napi_value aav_insert_batch_napi_start(napi_env env, napi_callback_info info);

#endif
