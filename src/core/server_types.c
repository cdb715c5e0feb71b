#include "server_types.h"

#include <math.h>
#include <stdio.h>

bool aav_server_probe_ferretdb(mongoc_client_t *client, bool *ferretdb, bson_error_t *error) {
  bson_t *command = BCON_NEW("buildInfo", BCON_INT32(1));
  bson_t reply;
  bool ok = mongoc_client_command_simple(client, "admin", command, NULL, &reply, error);
  *ferretdb = ok && bson_has_field(&reply, "ferretdbVersion");
  if (!ok && error->domain == MONGOC_ERROR_SERVER)
    ok = true; /* it answered, refusing: not FerretDB, which always answers */
  bson_destroy(&reply);
  bson_destroy(command);
  return ok;
}

/* The name of a value FerretDB v1 lacks, or NULL for one it stores. */
static const char *missing_type(const bson_iter_t *iter) {
  switch (bson_iter_type(iter)) {
  case BSON_TYPE_DOUBLE:
    return isnan(bson_iter_double(iter)) ? "NaN" : NULL;
  case BSON_TYPE_DECIMAL128:
    return "a Decimal128";
  case BSON_TYPE_CODE:
  case BSON_TYPE_CODEWSCOPE:
    return "JavaScript code";
  case BSON_TYPE_MINKEY:
    return "MinKey";
  case BSON_TYPE_MAXKEY:
    return "MaxKey";
  case BSON_TYPE_SYMBOL:
    return "a Symbol";
  case BSON_TYPE_DBPOINTER:
    return "a DBPointer";
  case BSON_TYPE_UNDEFINED:
    return "undefined";
  default:
    return NULL;
  }
}

/* Depth is bounded by aav_asset_check_structure, which the document passed. */
static bool walk(bson_iter_t *iter, const char *parent, asset_problem_t *p) {
  while (bson_iter_next(iter)) {
    char path[256];
    if (parent[0] == '\0')
      snprintf(path, sizeof path, "%s", bson_iter_key(iter));
    else
      snprintf(path, sizeof path, "%s.%s", parent, bson_iter_key(iter));
    const char *missing = missing_type(iter);
    if (missing) {
      snprintf(p->code, sizeof p->code, "ERR_ASSET_VALUE");
      snprintf(p->field, sizeof p->field, "%s", path);
      snprintf(p->message, sizeof p->message,
               "field \"%s\" is %s, which FerretDB v1 cannot store (it would close the "
               "connection)",
               path, missing);
      return false;
    }
    bson_iter_t child;
    if ((BSON_ITER_HOLDS_DOCUMENT(iter) || BSON_ITER_HOLDS_ARRAY(iter)) &&
        bson_iter_recurse(iter, &child) && !walk(&child, path, p))
      return false;
  }
  return true;
}

bool aav_server_types_ferretdb_ok(const bson_t *doc, asset_problem_t *problem) {
  bson_iter_t it;
  return !bson_iter_init(&it, doc) || walk(&it, "", problem);
}
