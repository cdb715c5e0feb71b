#include "errors.h"

#include <mongoc/mongoc.h>
#include <string.h>

#include "core/attempt.h"
#include "core/version_index.h"
#include "napi_util.h"



napi_value aav_errors_make(napi_env env, const char *kind, const char *message,
                       napi_value props) {
  napi_value data = props;
  if (!data && napi_create_object(env, &data) != napi_ok)
    return NULL;
  aav_napi_set_string(env, data, "kind", kind);
  aav_napi_set_string(env, data, "message", message);
  return data;
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

const char *aav_errors_describe_bson(napi_env env, napi_value props, const bson_error_t *error,
                                 const char *labels, int attempts) {
  const char *kind;
  bool from_server = error->domain == MONGOC_ERROR_SERVER ||
                     error->domain == MONGOC_ERROR_WRITE_CONCERN;
  if (from_server) {
    kind = error->code == 11000 ? ERROR_KIND_DUPLICATE : ERROR_KIND_SERVER;
    aav_napi_set_number(env, props, "code", error->code);
  } else if (is_connection_domain(error->domain)) {
    kind = ERROR_KIND_CONNECTION;
    aav_napi_set_string(env, props, "code", "ERR_ASSET_CONNECTION");
    aav_napi_set_bool(env, props, "retriable", true);
  } else if (error->domain == ATTEMPT_ERROR_DOMAIN) {
    kind = ERROR_KIND_INTERNAL;
    aav_napi_set_string(env, props, "code", "ERR_ASSET_VERSION_RANGE");
  } else if (error->domain == VERSION_INDEX_ERROR_DOMAIN) {
    kind = ERROR_KIND_INDEX;
    aav_napi_set_string(env, props, "code", "ERR_ASSET_INDEX");
  } else {
    kind = ERROR_KIND_INTERNAL;
    aav_napi_set_string(env, props, "code", "ERR_ASSET_DRIVER");
  }
  aav_napi_set_number(env, props, "driverDomain", error->domain);
  aav_napi_set_number(env, props, "driverCode", error->code);
  aav_napi_set_number(env, props, "attempts", attempts);
  set_labels(env, props, labels);
  return kind;
}

napi_value aav_errors_from_bson(napi_env env, const bson_error_t *error,
                            const char *labels, int attempts) {
  napi_value props;
  if (napi_create_object(env, &props) != napi_ok)
    return NULL;
  const char *kind = aav_errors_describe_bson(env, props, error, labels, attempts);
  return aav_errors_make(env, kind, error->message[0] ? error->message : "driver error", props);
}
