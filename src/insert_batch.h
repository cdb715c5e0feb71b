/* insertBatch(docs, maxRetries, recoveryMs), a NativeRepository method: see
 * insert_batch.c. Main thread. */
#ifndef INSERT_BATCH_H
#define INSERT_BATCH_H

#include <node_api.h>

napi_value aav_insert_batch_napi_start(napi_env env, napi_callback_info info);

#endif
