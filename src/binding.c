/* Module init: the only place that knows what `exports` looks like. */
#include <node_api.h>

#include "addon_state.h"
#include "core/asset_doc.h"
#include "core/attempt.h"
#include "errors.h"
#include "insert_batch.h"
#include "napi_util.h"
#include "repository.h"

/* limits: the numbers both sides check against, defined once, here in C. */
static napi_value limits_object(napi_env env) {
  napi_value limits;
  AAV_NAPI_CALL(env, napi_create_object(env, &limits));
  aav_napi_set_number(env, limits, "maxDepth", ASSET_MAX_DEPTH);
  aav_napi_set_number(env, limits, "maxBsonSize", ASSET_MAX_BSON_SIZE);
  aav_napi_set_number(env, limits, "storedOverhead", ASSET_STORED_OVERHEAD);
  aav_napi_set_number(env, limits, "maxBatch", ATTEMPT_MAX_BATCH);
  aav_napi_set_number(env, limits, "maxRetries", ATTEMPT_MAX_RETRIES);
  aav_napi_set_number(env, limits, "maxVersion", (double)ATTEMPT_MAX_VERSION);
  return limits;
}

/* batchLayout: where insertBatch puts each upload's numbers (insert_batch.h). */
static napi_value batch_layout_object(napi_env env) {
  napi_value layout;
  AAV_NAPI_CALL(env, napi_create_object(env, &layout));
  aav_napi_set_number(env, layout, "fields", BATCH_ITEM_FIELDS);
  aav_napi_set_number(env, layout, "version", BATCH_ITEM_VERSION);
  aav_napi_set_number(env, layout, "built", BATCH_ITEM_BUILT);
  aav_napi_set_number(env, layout, "createdMs", BATCH_ITEM_CREATED_MS);
  aav_napi_set_number(env, layout, "attempts", BATCH_ITEM_ATTEMPTS);
  aav_napi_set_number(env, layout, "retries", BATCH_ITEM_RETRIES);
  aav_napi_set_number(env, layout, "docEnd", BATCH_ITEM_DOC_END);
  return layout;
}

static napi_value owned_fields_array(napi_env env) {
  napi_value fields, name;
  AAV_NAPI_CALL(env, napi_create_array_with_length(env, AAV_ASSET_OWNED_COUNT, &fields));
  for (uint32_t i = 0; i < AAV_ASSET_OWNED_COUNT; i++) {
    AAV_NAPI_CALL(env, napi_create_string_utf8(env, AAV_ASSET_OWNED_FIELDS[i], NAPI_AUTO_LENGTH, &name));
    AAV_NAPI_CALL(env, napi_set_element(env, fields, i, name));
  }
  return fields;
}

/* threadpool(): the process-wide budget, shared by every environment:
 * { size, slots, running, peak, environments, waiting }. `running` counts
 * slots held, `waiting` environments queued for one. */
static napi_value threadpool_usage(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  AAV_NAPI_CALL(env, napi_create_object(env, &result));
  if (!aav_addon_state_get(env))
    return result;
  threadpool_usage_t u = aav_threadpool_budget_usage();
  aav_napi_set_number(env, result, "size", u.pool_size);
  aav_napi_set_number(env, result, "slots", u.slots);
  aav_napi_set_number(env, result, "running", u.used);
  aav_napi_set_number(env, result, "peak", u.peak);
  aav_napi_set_number(env, result, "environments", u.environments);
  aav_napi_set_number(env, result, "waiting", u.waiting);
  return result;
}

NAPI_MODULE_INIT() {
  if (!aav_addon_state_create(env))
    return NULL;
  napi_value repository = aav_repository_napi_define(env);
  napi_value limits = limits_object(env);
  napi_value layout = batch_layout_object(env);
  napi_value owned = owned_fields_array(env);
  if (!repository || !limits || !layout || !owned)
    return NULL;
  napi_property_descriptor props[] = {
      {"NativeRepository", NULL, NULL, NULL, NULL, repository, napi_enumerable, NULL},
      {"limits", NULL, NULL, NULL, NULL, limits, napi_enumerable, NULL},
      {"batchLayout", NULL, NULL, NULL, NULL, layout, napi_enumerable, NULL},
      {"ownedFields", NULL, NULL, NULL, NULL, owned, napi_enumerable, NULL},
      {"threadpool", NULL, threadpool_usage, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  AAV_NAPI_CALL(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}
