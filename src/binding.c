/* Module init: the only place that knows what `exports` looks like. */
#include <node_api.h>

#include "addon_state.h"
#include "core/asset_doc.h"
#include "errors.h"
#include "napi_check.h"
#include "repository.h"

/* validateAsset(bytes): null when the BSON document can be stored, else
 * { code, field, message }. Synchronous, so a bad upload is refused before it
 * joins a batch and nothing is written. */
static napi_value asset_napi_validate(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1] = {NULL}, result;
  bool is_typed = false;
  napi_typedarray_type type = napi_int8_array;
  size_t len = 0;
  void *data = NULL;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc >= 1)
    NAPI_CALL(env, napi_is_typedarray(env, argv[0], &is_typed));
  if (is_typed)
    NAPI_CALL(env, napi_get_typedarray_info(env, argv[0], &type, &len, &data, NULL, NULL));
  if (!is_typed || type != napi_uint8_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "bytes must be a Buffer");
    return NULL;
  }
  asset_problem_t problem;
  if (asset_validate(data, len, &problem)) {
    NAPI_CALL(env, napi_get_null(env, &result));
    return result;
  }
  NAPI_CALL(env, napi_create_object(env, &result));
  errors_set_string(env, result, "code", problem.code);
  errors_set_string(env, result, "field", problem.field);
  errors_set_string(env, result, "message", problem.message);
  return result;
}

/* threadpool(): the process-wide budget, shared by every environment:
 * { size, slots, running, peak, environments, waiting }. `running` counts
 * slots held, `waiting` environments queued for one. */
static napi_value threadpool_usage(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  NAPI_CALL(env, napi_create_object(env, &result));
  if (!addon_state_get(env))
    return result;
  threadpool_usage_t u = threadpool_budget_usage();
  errors_set_number(env, result, "size", u.pool_size);
  errors_set_number(env, result, "slots", u.slots);
  errors_set_number(env, result, "running", u.used);
  errors_set_number(env, result, "peak", u.peak);
  errors_set_number(env, result, "environments", u.environments);
  errors_set_number(env, result, "waiting", u.waiting);
  return result;
}

NAPI_MODULE_INIT() {
  if (!addon_state_create(env))
    return NULL;
  napi_value repository = repository_napi_define(env);
  if (!repository)
    return NULL;
  napi_property_descriptor props[] = {
      {"NativeRepository", NULL, NULL, NULL, NULL, repository, napi_enumerable, NULL},
      {"validateAsset", NULL, asset_napi_validate, NULL, NULL, NULL, napi_enumerable, NULL},
      {"threadpool", NULL, threadpool_usage, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  NAPI_CALL(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}
