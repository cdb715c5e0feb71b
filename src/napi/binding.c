/* Module init: the only place that knows what `exports` looks like. */
#include <node_api.h>

#include "core/asset_doc.h"
#include "core/limits.h"
#include "napi/errors.h"
#include "napi/insert_batch.h"
#include "napi/napi_util.h"
#include "napi/repository.h"
#include "runtime/addon_state.h"

typedef struct {
  const char *name;
  double value;
} named_number_t;

static napi_value numbers_object(napi_env env, const named_number_t *numbers, size_t n) {
  napi_value object;
  AAV_NAPI_CALL(env, napi_create_object(env, &object));
  for (size_t i = 0; i < n; i++)
    aav_napi_set_number(env, object, numbers[i].name, numbers[i].value);
  return object;
}

/* limits: the numbers both sides check against (core/limits.h). */
#define AAV_LIMIT_ENTRY(name, value) {#name, (double)(value)},
static const named_number_t LIMITS[] = {AAV_LIMITS(AAV_LIMIT_ENTRY)};
#undef AAV_LIMIT_ENTRY

/* batchLayout: where insertBatch puts each upload's numbers (insert_batch.h). */
static const named_number_t BATCH_LAYOUT[] = {
    {"fields", BATCH_ITEM_FIELDS},     {"version", BATCH_ITEM_VERSION},
    {"built", BATCH_ITEM_BUILT},       {"createdMs", BATCH_ITEM_CREATED_MS},
    {"attempts", BATCH_ITEM_ATTEMPTS}, {"retries", BATCH_ITEM_RETRIES},
    {"docEnd", BATCH_ITEM_DOC_END},
};

/* ownedFields: the names the stored document owns (asset_doc.h), in order. */
static napi_value owned_fields_array(napi_env env) {
  napi_value fields, name;
  AAV_NAPI_CALL(env, napi_create_array_with_length(env, AAV_ASSET_OWNED_COUNT, &fields));
  for (uint32_t i = 0; i < AAV_ASSET_OWNED_COUNT; i++) {
    AAV_NAPI_CALL(env, napi_create_string_utf8(env, AAV_ASSET_OWNED_FIELDS[i],
                                               NAPI_AUTO_LENGTH, &name));
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
  if (!aav_errors_ready(env))
    return NULL;
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

/* Before setErrorClasses there is no class to build: a plain Error with a
 * code (napi/errors.c's one fallback). */
static bool state_created(napi_env env) {
  switch (aav_addon_state_create(env)) {
  case ADDON_STATE_OK:
    return true;
  case ADDON_STATE_NO_MEMORY:
    aav_napi_throw_no_memory(env);
    return false;
  case ADDON_STATE_NO_HANDLES:
    aav_error_throw(env, AAV_ERROR_ASSET, "ERR_ASSET_INIT", NULL,
                    "could not set up the libuv handles");
    return false;
  case ADDON_STATE_NO_HOOKS:
    aav_error_throw(env, AAV_ERROR_ASSET, "ERR_ASSET_INIT", NULL,
                    "could not register the environment's teardown");
    return false;
  }
  return false;
}

NAPI_MODULE_INIT() {
  if (!state_created(env))
    return NULL;
  napi_property_descriptor batch_methods[] = {
      {"insertBatch", NULL, aav_insert_batch_napi_start, NULL, NULL, NULL, napi_default,
       NULL},
  };
  napi_value repository = aav_repository_napi_define(env, batch_methods, 1);
  napi_value limits = numbers_object(env, LIMITS, sizeof LIMITS / sizeof LIMITS[0]);
  if (limits)
    AAV_NAPI_CALL(env, napi_object_freeze(env, limits));
  napi_value layout =
      numbers_object(env, BATCH_LAYOUT, sizeof BATCH_LAYOUT / sizeof BATCH_LAYOUT[0]);
  napi_value owned = owned_fields_array(env);
  if (!repository || !limits || !layout || !owned)
    return NULL;
  napi_property_descriptor props[] = {
      {"NativeRepository", NULL, NULL, NULL, NULL, repository, napi_enumerable, NULL},
      {"limits", NULL, NULL, NULL, NULL, limits, napi_enumerable, NULL},
      {"batchLayout", NULL, NULL, NULL, NULL, layout, napi_enumerable, NULL},
      {"ownedFields", NULL, NULL, NULL, NULL, owned, napi_enumerable, NULL},
      {"threadpool", NULL, threadpool_usage, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setErrorClasses", NULL, aav_errors_napi_set_classes, NULL, NULL, NULL,
       napi_enumerable, NULL},
  };
  AAV_NAPI_CALL(
      env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}
