#include "napi/napi_util.h"

#include <stdio.h>
#include <stdlib.h>

#include "napi/errors.h"

void aav_napi_throw_failed(napi_env env, napi_status status, const char *call) {
  /* Read the last error first: every later napi call overwrites it. */
  const napi_extended_error_info *info = NULL;
  char message[512];
  snprintf(message, sizeof message, "atomic-asset-version: %s failed (status %d: %s)",
           call, (int)status,
           napi_get_last_error_info(env, &info) == napi_ok && info && info->error_message
               ? info->error_message
               : "unknown error");
  aav_error_throw(env, AAV_ERROR_ASSET, "ERR_ASSET_NAPI", NULL, message);
}

void aav_napi_throw_no_memory(napi_env env) {
  aav_error_throw(env, AAV_ERROR_ASSET, "ERR_ASSET_NO_MEMORY", NULL, "out of memory");
}

bool aav_napi_uint8_view(napi_env env, napi_value value, const uint8_t **data,
                         size_t *len) {
  bool is_typed = false;
  napi_typedarray_type type = napi_int8_array;
  void *bytes = NULL;
  *data = NULL;
  *len = 0;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed ||
      napi_get_typedarray_info(env, value, &type, len, &bytes, NULL, NULL) != napi_ok ||
      type != napi_uint8_array)
    return false;
  *data = bytes;
  return true;
}

bool aav_napi_string_arg(napi_env env, napi_value value, const char *what, bool optional,
                         char **out) {
  napi_valuetype type;
  size_t len;
  *out = NULL;
  AAV_NAPI_CALL_BOOL(env, napi_typeof(env, value, &type));
  if (optional && (type == napi_undefined || type == napi_null))
    return true;
  if (type != napi_string) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s must be a string", what);
    aav_error_throw(env, AAV_ERROR_VALIDATION, "ERR_INVALID_ARG_TYPE", what, msg);
    return false;
  }
  AAV_NAPI_CALL_BOOL(env, napi_get_value_string_utf8(env, value, NULL, 0, &len));
  *out = malloc(len + 1);
  if (!*out) {
    aav_napi_throw_no_memory(env);
    return false;
  }
  if (napi_get_value_string_utf8(env, value, *out, len + 1, &len) != napi_ok) {
    free(*out);
    *out = NULL;
    aav_napi_throw_failed(env, napi_generic_failure, "napi_get_value_string_utf8");
    return false;
  }
  return true;
}

bool aav_napi_bson_arg(napi_env env, napi_value value, const char *what, bson_t **out) {
  napi_valuetype type;
  const uint8_t *data;
  size_t len;
  *out = NULL;
  AAV_NAPI_CALL_BOOL(env, napi_typeof(env, value, &type));
  if (type == napi_undefined || type == napi_null)
    return true;
  /* An empty view has no data pointer, and libbson asserts on one. */
  if (aav_napi_uint8_view(env, value, &data, &len) && data && len >= 5)
    *out = bson_new_from_data(data, len);
  if (!*out) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s must be BSON bytes", what);
    aav_error_throw(env, AAV_ERROR_VALIDATION, "ERR_INVALID_ARG_TYPE", what, msg);
    return false;
  }
  return true;
}

bool aav_napi_int_arg(napi_env env, napi_value value, const char *what, int64_t min,
                      int64_t max, int64_t *out) {
  napi_valuetype type;
  double d = 0;
  AAV_NAPI_CALL_BOOL(env, napi_typeof(env, value, &type));
  if (type == napi_number)
    AAV_NAPI_CALL_BOOL(env, napi_get_value_double(env, value, &d));
  if (type != napi_number || d != d || d < (double)min || d > (double)max ||
      d != (double)(int64_t)d) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s must be an integer from %lld to %lld", what,
             (long long)min, (long long)max);
    aav_error_throw(env, AAV_ERROR_VALIDATION, "ERR_OUT_OF_RANGE", what, msg);
    return false;
  }
  *out = (int64_t)d;
  return true;
}

void aav_napi_set_string(napi_env env, napi_value obj, const char *key,
                         const char *value) {
  napi_value v;
  if (napi_create_string_utf8(env, value, NAPI_AUTO_LENGTH, &v) == napi_ok)
    napi_set_named_property(env, obj, key, v);
}

void aav_napi_set_number(napi_env env, napi_value obj, const char *key, double value) {
  napi_value v;
  if (napi_create_double(env, value, &v) == napi_ok)
    napi_set_named_property(env, obj, key, v);
}

void aav_napi_set_bool(napi_env env, napi_value obj, const char *key, bool value) {
  napi_value v;
  if (napi_get_boolean(env, value, &v) == napi_ok)
    napi_set_named_property(env, obj, key, v);
}
