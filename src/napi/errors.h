/* The one place that describes driver errors and our own refusals, as data:
 * { kind, message, code, … }. lib/errors.js alone makes error objects of
 * them (one per upload), so this layer never calls back into JavaScript.
 * Main thread. */
#ifndef ERRORS_H
#define ERRORS_H

#include <bson/bson.h>
#include <node_api.h>

#include "napi_util.h"

/* Kinds, as lib/errors.js names its classes. */
#define ERROR_KIND_VALIDATION "ValidationError"
#define ERROR_KIND_CONFLICT "VersionConflictError"
#define ERROR_KIND_DUPLICATE "DuplicateKeyError"
#define ERROR_KIND_SERVER "ServerError"
#define ERROR_KIND_CONNECTION "ConnectionError"
#define ERROR_KIND_CLOSED "RepositoryClosedError"
#define ERROR_KIND_INDEX "IndexError"
#define ERROR_KIND_INTERNAL "AssetError"
#define ERROR_KIND_OUTCOME_UNKNOWN "OutcomeUnknownError"

/* Error data of `kind` with `message`, added to `props` (may be NULL: a new
 * object). Returns NULL only if no object could be made. */
napi_value aav_errors_make(napi_env env, const char *kind, const char *message,
                       napi_value props);

/* Error data for a failed driver or server call. `labels` is the reply's
 * comma-separated error labels, `attempts` how many attempts were made. */
napi_value aav_errors_from_bson(napi_env env, const bson_error_t *error,
                            const char *labels, int attempts);

/* Fills props with what a driver or server error says (code, driverDomain,
 * driverCode, attempts, errorLabels, retriable) and returns its kind: the
 * data lib/errors.js turns into an error. */
const char *aav_errors_describe_bson(napi_env env, napi_value props, const bson_error_t *error,
                                 const char *labels, int attempts);

#endif
