#include "read_tops.h"

static void append_order(bson_t *doc, const aav_field_names_t *names,
                         const bson_t *prepared) {
  bson_iter_t it;
  if (bson_iter_init_find(&it, prepared, names->order_id))
    BSON_APPEND_VALUE(doc, names->order_id, bson_iter_value(&it));
}

int aav_read_tops_strategy(mongoc_collection_t *coll, const aav_field_names_t *names,
                           const bson_t *prepared) {
  names = AAV_NAMES(names);
  bson_t cmd = BSON_INITIALIZER, explain, filter, reply;
  BSON_APPEND_DOCUMENT_BEGIN(&cmd, "explain", &explain);
  BSON_APPEND_UTF8(&explain, "find", mongoc_collection_get_name(coll));
  BSON_APPEND_DOCUMENT_BEGIN(&explain, "filter", &filter);
  append_order(&filter, names, prepared);
  bson_append_document_end(&explain, &filter);
  bson_append_document_end(&cmd, &explain);
  BSON_APPEND_UTF8(&cmd, "verbosity", "queryPlanner");

  bson_error_t error;
  bson_iter_t it;
  int strategy = TOPS_ONE_FIND; /* a server that cannot say: as before */
  if (mongoc_collection_command_simple(coll, &cmd, NULL, &reply, &error) &&
      bson_iter_init_find(&it, &reply, "filterPushdown") && BSON_ITER_HOLDS_BOOL(&it) &&
      bson_iter_bool(&it))
    strategy = TOPS_EACH_ORDER;
  bson_destroy(&reply);
  bson_destroy(&cmd);
  return strategy;
}

bool aav_read_tops_each(mongoc_collection_t *coll, const aav_field_names_t *names,
                        pending_asset_t **items, const size_t *starts, size_t groups,
                        int64_t *tops, bson_error_t *error) {
  names = AAV_NAMES(names);
  bool ok = true;
  for (size_t g = 0; ok && g < groups; g++) {
    bson_t filter = BSON_INITIALIZER;
    append_order(&filter, names, items[starts[g]]->prepared);
    ok = aav_attempt_read_highest(coll, &filter, names, &tops[g], error);
    bson_destroy(&filter);
  }
  return ok;
}
