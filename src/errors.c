#include "errors.h"

#include <mongoc/mongoc.h>
#include <string.h>

#include "addon_state.h"
#include "core/attempt.h"
#include "core/version_index.h"
#include "napi_check.h"

void errors_set_string(napi_env env, napi_value obj, const char *key, const char *value) {
  napi_value v;
  if (napi_create_string_utf8(env, value, NAPI_AUTO_LENGTH, &v) == napi_ok)
    napi_set_named_property(env, obj, key, v);
}

void errors_set_number(napi_env env, napi_value obj, const char *key, double value) {
  napi_value v;
  if (napi_create_double(env, value, &v) == napi_ok)
    napi_set_named_property(env, obj, key, v);
}

napi_value errors_napi_factory_set(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_valuetype type;
  addon_state_t *state = addon_state_get(env);
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  NAPI_CALL(env, napi_typeof(env, argc > 0 ? argv[0] : NULL, &type));
  if (argc < 1 || type != napi_function || !state) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "factory must be a function");
    return NULL;
  }
  if (state->error_factory)
    NAPI_CALL(env, napi_delete_reference(env, state->error_factory));
  state->error_factory = NULL;
  NAPI_CALL(env, napi_create_reference(env, argv[0], 1, &state->error_factory));
  return NULL;
}

static napi_value plain_error(napi_env env, const char *kind, const char *message,
                              napi_value props) {
  napi_value msg, error, global, object_ctor, assign;
  if (napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg) != napi_ok ||
      napi_create_error(env, NULL, msg, &error) != napi_ok)
    return NULL;
  errors_set_string(env, error, "name", kind);
  if (props && napi_get_global(env, &global) == napi_ok &&
      napi_get_named_property(env, global, "Object", &object_ctor) == napi_ok &&
      napi_get_named_property(env, object_ctor, "assign", &assign) == napi_ok) {
    napi_value args[2] = {error, props};
    napi_call_function(env, object_ctor, assign, 2, args, NULL);
  }
  return error;
}

napi_value errors_make(napi_env env, const char *kind, const char *message,
                       napi_value props) {
  addon_state_t *state = addon_state_get(env);
  napi_value factory = NULL, undefined, args[3], result;
  if (state && state->error_factory &&
      napi_get_reference_value(env, state->error_factory, &factory) == napi_ok &&
      factory && napi_get_undefined(env, &undefined) == napi_ok &&
      napi_create_string_utf8(env, kind, NAPI_AUTO_LENGTH, &args[0]) == napi_ok &&
      napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &args[1]) == napi_ok) {
    args[2] = props ? props : undefined;
    if (napi_call_function(env, undefined, factory, 3, args, &result) == napi_ok)
      return result;
    /* A throwing factory must not hide the error it was asked to build. */
    napi_value ignored;
    napi_get_and_clear_last_exception(env, &ignored);
  }
  return plain_error(env, kind, message, props);
}

void errors_set_bool(napi_env env, napi_value obj, const char *key, bool value) {
  napi_value v;
  if (napi_get_boolean(env, value, &v) == napi_ok)
    napi_set_named_property(env, obj, key, v);
}

static bool is_connection_domain(uint32_t domain) {
  return domain == MONGOC_ERROR_STREAM || domain == MONGOC_ERROR_SERVER_SELECTION ||
         domain == MONGOC_ERROR_CLIENT || domain == MONGOC_ERROR_PROTOCOL;
}

static void set_labels(napi_env env, napi_value obj, const char *labels) {
  napi_value array, label;
  if (napi_create_array(env, &array) != napi_ok)
    return;
  uint32_t n = 0;
  const char *p = labels ? labels : "";
  while (*p) {
    size_t len = strcspn(p, ",");
    if (napi_create_string_utf8(env, p, len, &label) == napi_ok)
      napi_set_element(env, array, n++, label);
    p += len + (p[len] == ',');
  }
  napi_set_named_property(env, obj, "errorLabels", array);
}

const char *errors_describe_bson(napi_env env, napi_value props, const bson_error_t *error,
                                 const char *labels, int attempts) {
  const char *kind;
  bool from_server = error->domain == MONGOC_ERROR_SERVER ||
                     error->domain == MONGOC_ERROR_WRITE_CONCERN;
  if (from_server) {
    kind = error->code == 11000 ? ERROR_KIND_DUPLICATE : ERROR_KIND_SERVER;
    errors_set_number(env, props, "code", error->code);
  } else if (is_connection_domain(error->domain)) {
    kind = ERROR_KIND_CONNECTION;
    errors_set_string(env, props, "code", "ERR_ASSET_CONNECTION");
    errors_set_bool(env, props, "retriable", true);
  } else if (error->domain == ATTEMPT_ERROR_DOMAIN) {
    kind = ERROR_KIND_INTERNAL;
    errors_set_string(env, props, "code", "ERR_ASSET_VERSION_RANGE");
  } else if (error->domain == VERSION_INDEX_ERROR_DOMAIN) {
    kind = ERROR_KIND_INDEX;
    errors_set_string(env, props, "code", "ERR_ASSET_INDEX");
  } else {
    kind = ERROR_KIND_INTERNAL;
    errors_set_string(env, props, "code", "ERR_ASSET_DRIVER");
  }
  errors_set_number(env, props, "driverDomain", error->domain);
  errors_set_number(env, props, "driverCode", error->code);
  errors_set_number(env, props, "attempts", attempts);
  set_labels(env, props, labels);
  return kind;
}

napi_value errors_from_bson(napi_env env, const bson_error_t *error,
                            const char *labels, int attempts) {
  napi_value props;
  if (napi_create_object(env, &props) != napi_ok)
    return NULL;
  const char *kind = errors_describe_bson(env, props, error, labels, attempts);
  return errors_make(env, kind, error->message[0] ? error->message : "driver error", props);
}
