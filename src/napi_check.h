/* One family of Node-API status checks. On failure they throw a JS error
 * describing the failed call, unless an exception is already pending (that one
 * says more), then return from the calling function. Never abort: a failing
 * status during environment shutdown is expected, not a bug. */
#ifndef NAPI_CHECK_H
#define NAPI_CHECK_H

#include <node_api.h>

void napi_check_throw(napi_env env, napi_status status, const char *call);

#define NAPI_CALL_BASE(env, call, ret_val)                                          \
  do {                                                                              \
    napi_status napi_check_status_ = (call);                                        \
    if (napi_check_status_ != napi_ok) {                                            \
      napi_check_throw((env), napi_check_status_, #call);                           \
      return ret_val;                                                               \
    }                                                                               \
  } while (0)

/* For napi_callback functions and helpers returning napi_value. */
#define NAPI_CALL(env, call) NAPI_CALL_BASE(env, call, NULL)
/* For helpers returning bool success. */
#define NAPI_CALL_BOOL(env, call) NAPI_CALL_BASE(env, call, false)

#endif
