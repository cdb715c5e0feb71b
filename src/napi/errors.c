#include "napi/errors.h"

#include <mongoc/mongoc.h>
#include <string.h>

#include "core/attempt.h"
#include "core/version_index.h"
#include "napi/napi_util.h"
#include "runtime/addon_state.h"

_Static_assert(AAV_ERROR_CLASS_COUNT == AAV_ADDON_ERROR_CLASSES,
               "addon_state_t keeps one reference per error class");

static const char *const CLASS_NAMES[AAV_ERROR_CLASS_COUNT] = {
    [AAV_ERROR_ASSET] = "AssetError",
    [AAV_ERROR_VALIDATION] = "ValidationError",
    [AAV_ERROR_VERSION_CONFLICT] = "VersionConflictError",
    [AAV_ERROR_DUPLICATE_KEY] = "DuplicateKeyError",
    [AAV_ERROR_SERVER] = "ServerError",
    [AAV_ERROR_CONNECTION] = "ConnectionError",
    [AAV_ERROR_INDEX] = "IndexError",
    [AAV_ERROR_REPOSITORY_CLOSED] = "RepositoryClosedError",
    [AAV_ERROR_BATCH] = "BatchError",
    [AAV_ERROR_OUTCOME_UNKNOWN] = "OutcomeUnknownError",
};

/* Only where no class can be had: before setErrorClasses (module init, a
 * call made too early) or when the classes handed over are wrong. */
static void throw_plain(napi_env env, bool type_error, const char *code,
                        const char *message) {
  bool pending = false;
  napi_value c, m, e;
  if (napi_is_exception_pending(env, &pending) != napi_ok || pending ||
      napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &c) != napi_ok ||
      napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &m) != napi_ok)
    return;
  if ((type_error ? napi_create_type_error(env, c, m, &e)
                  : napi_create_error(env, c, m, &e)) == napi_ok)
    napi_throw(env, e);
}

static void delete_classes(napi_env env, addon_state_t *state) {
  for (size_t i = 0; i < AAV_ADDON_ERROR_CLASSES; i++) {
    if (state->error_classes[i])
      napi_delete_reference(env, state->error_classes[i]);
    state->error_classes[i] = NULL;
  }
}

static bool class_error(napi_env env, const char *name, const char *what) {
  char message[200];
  snprintf(message, sizeof message, "setErrorClasses: %s %s", name, what);
  throw_plain(env, true, "ERR_INVALID_ARG_TYPE", message);
  return false;
}

static bool take_classes(napi_env env, napi_value given, napi_ref *refs) {
  napi_valuetype type;
  napi_value ctors[AAV_ERROR_CLASS_COUNT];
  if (napi_typeof(env, given, &type) != napi_ok || type != napi_object)
    return class_error(env, "the argument", "must be an object of classes");
  for (size_t i = 0; i < AAV_ERROR_CLASS_COUNT; i++) {
    if (napi_get_named_property(env, given, CLASS_NAMES[i], &ctors[i]) != napi_ok ||
        napi_typeof(env, ctors[i], &type) != napi_ok || type != napi_function)
      return class_error(env, CLASS_NAMES[i], "is missing (not a class)");
  }
  /* Each must be AssetError or extend it: drift between lib/errors.js and
   * this table fails the load, never an error later. */
  for (size_t i = 0; i < AAV_ERROR_CLASS_COUNT; i++) {
    napi_value proto;
    bool is = false;
    if (i != AAV_ERROR_ASSET &&
        (napi_get_named_property(env, ctors[i], "prototype", &proto) != napi_ok ||
         napi_instanceof(env, proto, ctors[AAV_ERROR_ASSET], &is) != napi_ok || !is))
      return class_error(env, CLASS_NAMES[i], "does not extend AssetError");
  }
  for (size_t i = 0; i < AAV_ERROR_CLASS_COUNT; i++) {
    if (napi_create_reference(env, ctors[i], 1, &refs[i]) != napi_ok) {
      for (size_t k = 0; k < i; k++)
        napi_delete_reference(env, refs[k]);
      aav_napi_throw_failed(env, napi_generic_failure, "napi_create_reference");
      return false;
    }
  }
  return true;
}

napi_value aav_errors_napi_set_classes(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1] = {NULL}, undefined;
  addon_state_t *state = aav_addon_state_get(env);
  AAV_NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  AAV_NAPI_CALL(env, napi_get_undefined(env, &undefined));
  if (!state) {
    throw_plain(env, false, "ERR_ASSET_NOT_READY", "the addon's state is gone");
    return NULL;
  }
  napi_ref refs[AAV_ERROR_CLASS_COUNT];
  if (!take_classes(env, argc > 0 ? argv[0] : undefined, refs))
    return NULL;
  delete_classes(env, state);
  memcpy(state->error_classes, refs, sizeof refs);
  return undefined;
}

static napi_value class_ctor(napi_env env, aav_error_class_t cls) {
  addon_state_t *state = aav_addon_state_get(env);
  napi_value ctor = NULL;
  if (!state || (unsigned)cls >= AAV_ERROR_CLASS_COUNT || !state->error_classes[cls] ||
      napi_get_reference_value(env, state->error_classes[cls], &ctor) != napi_ok)
    return NULL;
  return ctor;
}

bool aav_errors_ready(napi_env env) {
  if (class_ctor(env, AAV_ERROR_ASSET))
    return true;
  throw_plain(
      env, false, "ERR_ASSET_NOT_READY",
      "atomic-asset-version: setErrorClasses was not called (load the addon through "
      "lib/native.js)");
  return false;
}

/* When a class's constructor throws (a subclass that misbehaves, an accessor
 * an app put on Error.prototype): that one error becomes a plain Error with
 * the class's name, the same message and properties (defined, not assigned),
 * and the constructor's exception as `cause`. One error that cannot be built
 * must not take its batch's results down, nor leave an exception pending
 * under a promise that then cannot settle. */
static napi_value plain_copy(napi_env env, aav_error_class_t cls, napi_value message,
                             napi_value props) {
  napi_value thrown = NULL, error, keys, name;
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending &&
      napi_get_and_clear_last_exception(env, &thrown) != napi_ok)
    return NULL;
  if (napi_create_error(env, NULL, message, &error) != napi_ok)
    return NULL;
  napi_property_descriptor d = {.attributes =
                                    napi_writable | napi_enumerable | napi_configurable};
  uint32_t n = 0;
  if (napi_get_property_names(env, props, &keys) == napi_ok &&
      napi_get_array_length(env, keys, &n) == napi_ok) {
    for (uint32_t i = 0; i < n; i++) {
      if (napi_get_element(env, keys, i, &d.name) != napi_ok ||
          napi_get_property(env, props, d.name, &d.value) != napi_ok ||
          napi_define_properties(env, error, 1, &d) != napi_ok)
        break;
    }
  }
  if (napi_create_string_utf8(env, "name", NAPI_AUTO_LENGTH, &d.name) == napi_ok &&
      napi_create_string_utf8(env, CLASS_NAMES[cls], NAPI_AUTO_LENGTH, &name) ==
          napi_ok) {
    d.value = name;
    napi_define_properties(env, error, 1, &d);
  }
  if (thrown &&
      napi_create_string_utf8(env, "cause", NAPI_AUTO_LENGTH, &d.name) == napi_ok) {
    d.value = thrown;
    napi_define_properties(env, error, 1, &d);
  }
  /* A getter in props that threw leaves nothing pending either. */
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending)
    napi_get_and_clear_last_exception(env, &thrown);
  return error;
}

napi_value aav_error_new(napi_env env, aav_error_class_t cls, const char *message,
                         napi_value props) {
  napi_value ctor = class_ctor(env, cls), args[2], error;
  if (!ctor ||
      napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &args[0]) != napi_ok)
    return NULL;
  if (props)
    args[1] = props;
  else if (napi_create_object(env, &args[1]) != napi_ok)
    return NULL;
  if (napi_new_instance(env, ctor, 2, args, &error) != napi_ok)
    return plain_copy(env, cls, args[0], args[1]);
  return error;
}

napi_value aav_error_new_coded(napi_env env, aav_error_class_t cls, const char *code,
                               const char *field, const char *message) {
  napi_value props;
  if (napi_create_object(env, &props) != napi_ok)
    return NULL;
  aav_napi_set_string(env, props, "code", code);
  if (field)
    aav_napi_set_string(env, props, "field", field);
  return aav_error_new(env, cls, message, props);
}

void aav_error_throw(napi_env env, aav_error_class_t cls, const char *code,
                     const char *field, const char *message) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) != napi_ok || pending)
    return;
  if (!class_ctor(env, cls)) {
    throw_plain(env, false, code, message); /* no class yet: module init */
    return;
  }
  napi_value error = aav_error_new_coded(env, cls, code, field, message);
  if (error)
    napi_throw(env, error);
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

aav_error_class_t aav_errors_describe_bson(napi_env env, napi_value props,
                                           const bson_error_t *error, const char *labels,
                                           int attempts) {
  aav_error_class_t cls;
  bool from_server =
      error->domain == MONGOC_ERROR_SERVER || error->domain == MONGOC_ERROR_WRITE_CONCERN;
  if (from_server) {
    cls = error->code == 11000 ? AAV_ERROR_DUPLICATE_KEY : AAV_ERROR_SERVER;
    aav_napi_set_number(env, props, "code", error->code);
  } else if (is_connection_domain(error->domain)) {
    cls = AAV_ERROR_CONNECTION;
    aav_napi_set_string(env, props, "code", "ERR_ASSET_CONNECTION");
    aav_napi_set_bool(env, props, "retriable", true);
  } else if (error->domain == ATTEMPT_ERROR_DOMAIN) {
    cls = AAV_ERROR_ASSET;
    aav_napi_set_string(env, props, "code", "ERR_ASSET_VERSION_RANGE");
  } else if (error->domain == VERSION_INDEX_ERROR_DOMAIN) {
    cls = AAV_ERROR_INDEX;
    aav_napi_set_string(env, props, "code", "ERR_ASSET_INDEX");
  } else {
    cls = AAV_ERROR_ASSET;
    aav_napi_set_string(env, props, "code", "ERR_ASSET_DRIVER");
  }
  aav_napi_set_number(env, props, "driverDomain", error->domain);
  aav_napi_set_number(env, props, "driverCode", error->code);
  aav_napi_set_number(env, props, "attempts", attempts);
  set_labels(env, props, labels);
  return cls;
}

napi_value aav_errors_from_bson(napi_env env, const bson_error_t *error,
                                const char *labels, int attempts) {
  napi_value props;
  if (napi_create_object(env, &props) != napi_ok)
    return NULL;
  aav_error_class_t cls = aav_errors_describe_bson(env, props, error, labels, attempts);
  return aav_error_new(env, cls, error->message[0] ? error->message : "driver error",
                       props);
}
