/* The Node-API plumbing every binding file uses: one family of status
 * checks, argument readers that throw a ValidationError naming the argument
 * (code ERR_INVALID_ARG_TYPE or ERR_OUT_OF_RANGE, `field` the argument), and property
 * setters. Main thread only. */
#ifndef NAPI_UTIL_H
#define NAPI_UTIL_H

#include <bson/bson.h>
#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>

/* Throws an error describing the failed call, unless an exception is already
 * pending (that one says more). Never aborts: a failing status during
 * environment shutdown is expected, not a bug. */
void aav_napi_throw_failed(napi_env env, napi_status status, const char *call);

/* Throws an AssetError with code ERR_ASSET_NO_MEMORY. */
void aav_napi_throw_no_memory(napi_env env);

#define AAV_NAPI_CALL_BASE(env, call, ret_val)                                           \
  do {                                                                                   \
    napi_status aav_napi_status_ = (call);                                               \
    if (aav_napi_status_ != napi_ok) {                                                   \
      aav_napi_throw_failed((env), aav_napi_status_, #call);                             \
      return ret_val;                                                                    \
    }                                                                                    \
  } while (0)

/* For napi_callback functions and helpers returning napi_value. */
#define AAV_NAPI_CALL(env, call) AAV_NAPI_CALL_BASE(env, call, NULL)
/* For helpers returning bool success. */
#define AAV_NAPI_CALL_BOOL(env, call) AAV_NAPI_CALL_BASE(env, call, false)

/* The bytes of a Uint8Array (a Buffer), borrowed while `value` lives; false
 * (nothing thrown) when it is not one. */
bool aav_napi_uint8_view(napi_env env, napi_value value, const uint8_t **data,
                         size_t *len);

/* A string argument copied into a new buffer (caller frees); NULL for
 * null/undefined when optional. False with a ValidationError naming `what`. */
bool aav_napi_string_arg(napi_env env, napi_value value, const char *what, bool optional,
                         char **out);

/* Optional BSON bytes (a Buffer or Uint8Array) copied into a new bson_t
 * (caller destroys); NULL for null/undefined. False with a ValidationError. */
bool aav_napi_bson_arg(napi_env env, napi_value value, const char *what, bson_t **out);

/* An integer number in [min, max]. False with a ValidationError naming `what`. */
bool aav_napi_int_arg(napi_env env, napi_value value, const char *what, int64_t min,
                      int64_t max, int64_t *out);

/* Property setters. They ignore failures on purpose: a missing detail must
 * not hide the object (an error, a figure) it belongs to. */
void aav_napi_set_string(napi_env env, napi_value obj, const char *key,
                         const char *value);
void aav_napi_set_number(napi_env env, napi_value obj, const char *key, double value);
void aav_napi_set_bool(napi_env env, napi_value obj, const char *key, bool value);

#endif
