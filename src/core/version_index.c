#include "version_index.h"

#include <stdio.h>
#include <string.h>

typedef enum { INDEX_ABSENT, INDEX_USABLE, INDEX_UNSAFE } index_state_t;

void aav_version_index_name(const aav_field_names_t *names, char *out, size_t size) {
  names = AAV_NAMES(names);
  snprintf(out, size, "%s_1_%s_1", names->order_id, names->version);
}

bool aav_version_index_matches_keys(const bson_t *key, const aav_field_names_t *names) {
  bson_iter_t it;
  int seen = 0;
  names = AAV_NAMES(names);
  if (!bson_iter_init(&it, key))
    return false;
  while (bson_iter_next(&it)) {
    const char *k = bson_iter_key(&it);
    if (strcmp(k, names->order_id) != 0 && strcmp(k, names->version) != 0)
      return false;
    if (!BSON_ITER_HOLDS_NUMBER(&it))
      return false;
    seen++;
  }
  return seen == 2;
}

static bool holds_true(const bson_t *spec, const char *field) {
  bson_iter_t it;
  return bson_iter_init_find(&it, spec, field) && bson_iter_as_bool(&it);
}

static index_state_t find_index(mongoc_collection_t *coll, const aav_field_names_t *names,
                                char *name_out, size_t name_size, bson_error_t *error,
                                bool *list_failed) {
  index_state_t state = INDEX_ABSENT;
  const bson_t *spec;
  bson_error_t cursor_error;
  mongoc_cursor_t *cursor = mongoc_collection_find_indexes_with_opts(coll, NULL);

  *list_failed = false;
  while (mongoc_cursor_next(cursor, &spec)) {
    bson_iter_t it, key_it;
    const uint8_t *key_data;
    uint32_t key_len;
    bson_t key;
    if (!bson_iter_init_find(&key_it, spec, "key") || !BSON_ITER_HOLDS_DOCUMENT(&key_it))
      continue;
    bson_iter_document(&key_it, &key_len, &key_data);
    if (!bson_init_static(&key, key_data, key_len) ||
        !aav_version_index_matches_keys(&key, names))
      continue;
    const char *name = "?";
    if (bson_iter_init_find(&it, spec, "name") && BSON_ITER_HOLDS_UTF8(&it))
      name = bson_iter_utf8(&it, NULL);
    bool partial = bson_iter_init_find(&it, spec, "partialFilterExpression");
    if (holds_true(spec, "unique") && !partial) {
      bson_strncpy(name_out, name, name_size);
      state = INDEX_USABLE;
      break;
    }
    bson_set_error(error, VERSION_INDEX_ERROR_DOMAIN, VERSION_INDEX_ERROR_UNSAFE,
                   "index \"%s\" on { %s, %s } of %s is %s: versions "
                   "would not be protected against duplicates; drop it so a "
                   "unique one can be created",
                   name, names->order_id, names->version,
                   mongoc_collection_get_name(coll), partial ? "partial" : "not unique");
    state = INDEX_UNSAFE;
  }
  /* A collection that does not exist yet has no indexes; that is not an error. */
  if (mongoc_cursor_error(cursor, &cursor_error) && cursor_error.code != 26) {
    *error = cursor_error;
    *list_failed = true;
  }
  mongoc_cursor_destroy(cursor);
  return state;
}

bool aav_version_index_shard_key_ok(const bson_t *shard_key,
                                    const aav_field_names_t *names) {
  bson_iter_t it;
  int n = 0;
  names = AAV_NAMES(names);
  if (!bson_iter_init(&it, shard_key))
    return false;
  while (bson_iter_next(&it)) {
    const char *expected = n == 0 ? names->order_id : n == 1 ? names->version : NULL;
    if (!expected || strcmp(bson_iter_key(&it), expected) != 0 ||
        !BSON_ITER_HOLDS_NUMBER(&it) || bson_iter_as_int64(&it) != 1)
      return false;
    n++;
  }
  return n >= 1;
}

/* Behind a mongos, a sharded collection must be sharded on a ranged prefix
 * of (orderId, version). An unsharded collection, or a plain server, is fine. */
static bool check_sharding(mongoc_client_t *client, const char *db_name,
                           mongoc_collection_t *coll, const aav_field_names_t *names,
                           bson_error_t *error) {
  bson_t hello = BSON_INITIALIZER, reply;
  BSON_APPEND_INT32(&hello, "hello", 1);
  bool ok = mongoc_client_command_simple(client, "admin", &hello, NULL, &reply, error);
  bson_destroy(&hello);
  bson_iter_t it;
  bool mongos = ok && bson_iter_init_find(&it, &reply, "msg") &&
                BSON_ITER_HOLDS_UTF8(&it) &&
                strcmp(bson_iter_utf8(&it, NULL), "isdbgrid") == 0;
  bson_destroy(&reply);
  if (!ok || !mongos)
    return ok;

  char ns[512];
  snprintf(ns, sizeof ns, "%s.%s", db_name, mongoc_collection_get_name(coll));
  bson_t *filter = BCON_NEW("_id", BCON_UTF8(ns));
  mongoc_collection_t *collections =
      mongoc_client_get_collection(client, "config", "collections");
  mongoc_cursor_t *cursor =
      mongoc_collection_find_with_opts(collections, filter, NULL, NULL);
  const bson_t *doc;
  bool safe = true;
  if (mongoc_cursor_next(cursor, &doc) && bson_iter_init_find(&it, doc, "key") &&
      BSON_ITER_HOLDS_DOCUMENT(&it)) {
    const uint8_t *data;
    uint32_t len;
    bson_t key;
    bson_iter_document(&it, &len, &data);
    safe =
        bson_init_static(&key, data, len) && aav_version_index_shard_key_ok(&key, names);
    if (!safe)
      bson_set_error(error, VERSION_INDEX_ERROR_DOMAIN, VERSION_INDEX_ERROR_UNSAFE,
                     "%s is sharded on a key that is not { %s: 1 } or { %s: 1, "
                     "%s: 1 }: the unique (%s, %s) index cannot exist there",
                     ns, names->order_id, names->order_id, names->version,
                     names->order_id, names->version);
  }
  if (mongoc_cursor_error(cursor, error))
    safe = false;
  mongoc_cursor_destroy(cursor);
  mongoc_collection_destroy(collections);
  bson_destroy(filter);
  return safe;
}

bool aav_version_index_ensure(mongoc_client_t *client, const char *db_name,
                              mongoc_collection_t *coll, const aav_field_names_t *names,
                              char *name_out, size_t name_size, bson_error_t *error) {
  names = AAV_NAMES(names);
  if (!check_sharding(client, db_name, coll, names, error))
    return false;
  bool list_failed;
  index_state_t state = find_index(coll, names, name_out, name_size, error, &list_failed);
  if (list_failed || state == INDEX_UNSAFE)
    return false;
  if (state == INDEX_USABLE)
    return true;

  /* One index per createIndexes command: FerretDB v1 mishandles several. */
  bson_t cmd = BSON_INITIALIZER, indexes, index, key;
  BSON_APPEND_UTF8(&cmd, "createIndexes", mongoc_collection_get_name(coll));
  BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &indexes);
  BSON_APPEND_DOCUMENT_BEGIN(&indexes, "0", &index);
  BSON_APPEND_DOCUMENT_BEGIN(&index, "key", &key);
  char index_name[2 * AAV_FIELD_NAME_MAX + 8];
  aav_version_index_name(names, index_name, sizeof index_name);
  BSON_APPEND_INT32(&key, names->order_id, 1);
  BSON_APPEND_INT32(&key, names->version, 1);
  bson_append_document_end(&index, &key);
  BSON_APPEND_UTF8(&index, "name", index_name);
  BSON_APPEND_BOOL(&index, "unique", true);
  bson_append_document_end(&indexes, &index);
  bson_append_array_end(&cmd, &indexes);
  bson_error_t create_error;
  bool ok =
      mongoc_collection_write_command_with_opts(coll, &cmd, NULL, NULL, &create_error);
  bson_destroy(&cmd);
  if (!ok) {
    /* Another client (Mongoose's autoIndex, another process) may have made
     * it meanwhile: FerretDB then fails ours ("UNIQUE constraint failed").
     * What listIndexes shows decides. */
    state = find_index(coll, names, name_out, name_size, error, &list_failed);
    if (!list_failed && state == INDEX_USABLE)
      return true;
    if (!list_failed)
      *error = create_error;
    return false;
  }

  /* FerretDB answers "already exists" for a same-named index even when it is
   * not unique, so trust only what listIndexes shows afterwards. */
  state = find_index(coll, names, name_out, name_size, error, &list_failed);
  if (state == INDEX_USABLE)
    return true;
  if (state == INDEX_ABSENT && !list_failed)
    bson_set_error(error, VERSION_INDEX_ERROR_DOMAIN, VERSION_INDEX_ERROR_UNSAFE,
                   "createIndexes reported success but no unique index on "
                   "{ %s, %s } exists on %s",
                   names->order_id, names->version, mongoc_collection_get_name(coll));
  return false;
}
