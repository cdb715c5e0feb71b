/* Module init: the only place that knows what `exports` looks like. */
#include <node_api.h>

#include "addon_state.h"
#include "core/asset_doc.h"
#include "errors.h"
#include "napi_util.h"
#include "repository.h"

/* validateAsset(bytes): null when the BSON document can be stored, else
 * { code, field, message }. Synchronous, so a bad upload is refused before it
 * joins a batch and nothing is written. */
static napi_value asset_napi_validate(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1] = {NULL}, result;
  const uint8_t *data = NULL;
  size_t len = 0;
  AAV_NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || !aav_napi_uint8_view(env, argv[0], &data, &len)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "bytes must be a Buffer");
    return NULL;
  }
  asset_problem_t problem;
  if (aav_asset_validate(data, len, &problem)) {
    AAV_NAPI_CALL(env, napi_get_null(env, &result));
    return result;
  }
  AAV_NAPI_CALL(env, napi_create_object(env, &result));
  aav_napi_set_string(env, result, "code", problem.code);
  aav_napi_set_string(env, result, "field", problem.field);
  aav_napi_set_string(env, result, "message", problem.message);
  return result;
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
  if (!repository)
    return NULL;
  napi_property_descriptor props[] = {
      {"NativeRepository", NULL, NULL, NULL, NULL, repository, napi_enumerable, NULL},
      {"validateAsset", NULL, asset_napi_validate, NULL, NULL, NULL, napi_enumerable, NULL},
      {"threadpool", NULL, threadpool_usage, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  AAV_NAPI_CALL(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}
