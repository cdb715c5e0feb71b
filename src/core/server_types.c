#include "server_types.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

bool aav_server_probe_ferretdb(mongoc_client_t *client, bool *ferretdb,
                               bson_error_t *error) {
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

/* Why FerretDB v1 cannot take this value, or NULL when it can. It closes the
 * connection on the types it lacks (and on NaN), and refuses on validation an
 * infinite number, an array directly inside an array and an array or regex
 * _id; after such a refusal its ordered insert goes on with the documents
 * behind it (a duplicate before it then leaves a gap), so both are refused
 * before anything is sent. */
static const char *unstorable(const bson_iter_t *iter, bool in_array, bool top_id) {
  switch (bson_iter_type(iter)) {
  case BSON_TYPE_DOUBLE:
    if (isnan(bson_iter_double(iter)))
      return "NaN";
    return isinf(bson_iter_double(iter)) ? "an infinite number" : NULL;
  case BSON_TYPE_ARRAY:
    if (top_id)
      return "an array _id";
    return in_array ? "an array directly inside an array" : NULL;
  case BSON_TYPE_REGEX:
    return top_id ? "a regex _id" : NULL;
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
static bool walk(bson_iter_t *iter, const char *parent, bool in_array,
                 asset_problem_t *p) {
  while (bson_iter_next(iter)) {
    char path[256];
    if (parent[0] == '\0')
      snprintf(path, sizeof path, "%s", bson_iter_key(iter));
    else
      snprintf(path, sizeof path, "%s.%s", parent, bson_iter_key(iter));
    bool top_id = parent[0] == '\0' && strcmp(bson_iter_key(iter), "_id") == 0;
    const char *why = unstorable(iter, in_array, top_id);
    if (why) {
      snprintf(p->code, sizeof p->code, "ERR_ASSET_VALUE");
      snprintf(p->field, sizeof p->field, "%s", path);
      snprintf(p->message, sizeof p->message,
               "field \"%s\" is %s, which FerretDB v1 cannot store", path, why);
      return false;
    }
    bson_iter_t child;
    if ((BSON_ITER_HOLDS_DOCUMENT(iter) || BSON_ITER_HOLDS_ARRAY(iter)) &&
        bson_iter_recurse(iter, &child) &&
        !walk(&child, path, BSON_ITER_HOLDS_ARRAY(iter), p))
      return false;
  }
  return true;
}

bool aav_server_types_ferretdb_ok(const bson_t *doc, asset_problem_t *problem) {
  bson_iter_t it;
  return !bson_iter_init(&it, doc) || walk(&it, "", false, problem);
}
