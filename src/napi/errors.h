/* The one place that makes JavaScript errors. lib/native.js hands the
 * addon lib/errors.js's classes at load (binding.setErrorClasses); every
 * error the addon throws, rejects with or returns is then
 * `new Class(message, props)`, built here. Main thread only. */
#ifndef ERRORS_H
#define ERRORS_H

#include <bson/bson.h>
#include <node_api.h>
#include <stdbool.h>

/* lib/errors.js's classes, by the names setErrorClasses takes them. */
typedef enum {
  AAV_ERROR_ASSET,
  AAV_ERROR_VALIDATION,
  AAV_ERROR_VERSION_CONFLICT,
  AAV_ERROR_DUPLICATE_KEY,
  AAV_ERROR_SERVER,
  AAV_ERROR_CONNECTION,
  AAV_ERROR_INDEX,
  AAV_ERROR_REPOSITORY_CLOSED,
  AAV_ERROR_BATCH,
  AAV_ERROR_OUTCOME_UNKNOWN,
  AAV_ERROR_CLASS_COUNT
} aav_error_class_t;

/* binding.setErrorClasses({ AssetError, ValidationError, … }): keeps a
 * reference to each class in the environment's state. A missing class, or
 * one that is not an AssetError, throws a TypeError. */
napi_value aav_errors_napi_set_classes(napi_env env, napi_callback_info info);

/* True once setErrorClasses has run in this environment; otherwise throws
 * (a plain Error, code ERR_ASSET_NOT_READY: there is no class yet). Every
 * other binding function checks it first. */
bool aav_errors_ready(napi_env env);

/* new Class(message, props); props may be NULL. NULL when it could not be
 * made (an exception may then be pending). */
napi_value aav_error_new(napi_env env, aav_error_class_t cls, const char *message,
                         napi_value props);

/* new Class(message, { code, field }) (no field when `field` is NULL). */
napi_value aav_error_new_coded(napi_env env, aav_error_class_t cls, const char *code,
                               const char *field, const char *message);

/* Throws aav_error_new_coded(…), unless an exception is already pending
 * (that one says more). */
void aav_error_throw(napi_env env, aav_error_class_t cls, const char *code,
                     const char *field, const char *message);

/* Fills props with what a driver or server error says (code, driverDomain,
 * driverCode, attempts, errorLabels, retriable) and returns its class.
 * `labels` is the reply's comma-separated error labels. */
aav_error_class_t aav_errors_describe_bson(napi_env env, napi_value props,
                                           const bson_error_t *error, const char *labels,
                                           int attempts);

/* The error for a failed driver or server call. */
napi_value aav_errors_from_bson(napi_env env, const bson_error_t *error,
                                const char *labels, int attempts);

#endif
