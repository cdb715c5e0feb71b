#include "attempt.h"

#include <stdio.h>
#include <string.h>

#include "asset_doc.h"
#include "version_index.h"

#define MONGO_DUPLICATE_KEY 11000
#define MONGO_WRITE_CONFLICT 112

typedef enum { DUP_VERSION, DUP_OWN_ID, DUP_OTHER } dup_kind_t;

static int64_t wall_clock_ms(void) {
  struct timeval tv;
  bson_gettimeofday(&tv);
  return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static mongoc_read_prefs_t *primary_prefs(void) {
  return mongoc_read_prefs_new(MONGOC_READ_PRIMARY);
}

/* Finds one document; returns a copy (caller destroys) or NULL. */
static bson_t *find_one(mongoc_collection_t *coll, const bson_t *filter,
                        const bson_t *opts, bson_error_t *error, bool *failed) {
  mongoc_read_prefs_t *prefs = primary_prefs();
  mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, filter, opts, prefs);
  const bson_t *doc;
  bson_t *found = NULL;
  if (mongoc_cursor_next(cursor, &doc))
    found = bson_copy(doc);
  *failed = mongoc_cursor_error(cursor, error);
  mongoc_cursor_destroy(cursor);
  mongoc_read_prefs_destroy(prefs);
  return found;
}

bool attempt_read_highest(mongoc_collection_t *coll, const bson_t *order_filter,
                          int64_t *highest, bson_error_t *error) {
  bson_t opts = BSON_INITIALIZER, sort, projection;
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
  BSON_APPEND_INT32(&sort, "version", -1);
  bson_append_document_end(&opts, &sort);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &projection);
  BSON_APPEND_INT32(&projection, "version", 1);
  bson_append_document_end(&opts, &projection);
  BSON_APPEND_INT64(&opts, "limit", 1);
  bool failed;
  bson_t *doc = find_one(coll, order_filter, &opts, error, &failed);
  bson_destroy(&opts);
  if (failed) {
    bson_destroy(doc);
    return false;
  }
  *highest = 0;
  bson_iter_t it;
  if (doc && bson_iter_init_find(&it, doc, "version") &&
      !asset_read_integer(&it, highest)) {
    bson_set_error(error, MONGOC_ERROR_BSON, MONGOC_ERROR_BSON_INVALID,
                   "the highest stored version of this order is not an integer");
    bson_destroy(doc);
    return false;
  }
  bson_destroy(doc);
  return true;
}

static void order_filter_of(const bson_t *prepared, bson_t *filter) {
  bson_iter_t it;
  bson_init(filter);
  if (bson_iter_init_find(&it, prepared, "orderId"))
    BSON_APPEND_VALUE(filter, "orderId", bson_iter_value(&it));
}

static bson_t *find_by_id(mongoc_collection_t *coll, const bson_t *prepared,
                          bson_error_t *error, bool *failed) {
  bson_t filter = BSON_INITIALIZER;
  bson_iter_t it;
  if (bson_iter_init_find(&it, prepared, "_id"))
    BSON_APPEND_VALUE(&filter, "_id", bson_iter_value(&it));
  bson_t *doc = find_one(coll, &filter, NULL, error, failed);
  bson_destroy(&filter);
  return doc;
}

static bool version_taken(mongoc_collection_t *coll, const bson_t *prepared,
                          int64_t version) {
  bson_t filter;
  bson_error_t ignored;
  bool failed;
  order_filter_of(prepared, &filter);
  asset_append_version(&filter, "version", version);
  bson_t *doc = find_one(coll, &filter, NULL, &ignored, &failed);
  bool taken = doc != NULL || failed; /* on doubt, a retry re-reads: safe */
  bson_destroy(doc);
  bson_destroy(&filter);
  return taken;
}

static dup_kind_t own_id_or_other(const pending_asset_t *item) {
  return item->id_generated ? DUP_OWN_ID : DUP_OTHER;
}

/* Which unique index refused the insert. MongoDB names it (keyPattern since
 * 4.4, "index: <name>" in errmsg); FerretDB v1 names none, so then ask the
 * collection which of our two keys is already there. */
static dup_kind_t classify_duplicate(mongoc_collection_t *coll,
                                     const attempt_config_t *config,
                                     const bson_t *write_error,
                                     const pending_asset_t *item) {
  bson_iter_t it;
  if (bson_iter_init_find(&it, write_error, "keyPattern") &&
      BSON_ITER_HOLDS_DOCUMENT(&it)) {
    const uint8_t *data;
    uint32_t len;
    bson_t key;
    bson_iter_document(&it, &len, &data);
    if (bson_init_static(&key, data, len)) {
      if (version_index_matches_keys(&key))
        return DUP_VERSION;
      if (bson_has_field(&key, "_id") && bson_count_keys(&key) == 1)
        return own_id_or_other(item);
      return DUP_OTHER;
    }
  }
  if (bson_iter_init_find(&it, write_error, "errmsg") && BSON_ITER_HOLDS_UTF8(&it)) {
    const char *index = strstr(bson_iter_utf8(&it, NULL), " index: ");
    if (index) {
      index += strlen(" index: ");
      size_t name_len = strcspn(index, " ");
      if (name_len == strlen(config->version_index) &&
          strncmp(index, config->version_index, name_len) == 0)
        return DUP_VERSION;
      if (name_len == 4 && strncmp(index, "_id_", 4) == 0)
        return own_id_or_other(item);
      return DUP_OTHER;
    }
  }
  bson_error_t error;
  bool failed;
  bson_t *same_id = find_by_id(coll, item->prepared, &error, &failed);
  bson_destroy(same_id);
  if (same_id)
    return own_id_or_other(item);
  return version_taken(coll, item->prepared, item->version) ? DUP_VERSION : DUP_OTHER;
}

static void collect_labels(const bson_t *reply, attempt_result_t *out) {
  bson_iter_t it, label;
  out->labels[0] = '\0';
  if (!reply || !bson_iter_init_find(&it, reply, "errorLabels") ||
      !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &label))
    return;
  while (bson_iter_next(&label)) {
    if (!BSON_ITER_HOLDS_UTF8(&label))
      continue;
    if (out->labels[0] != '\0')
      bson_strncpy(out->labels + strlen(out->labels), ",",
                   sizeof out->labels - strlen(out->labels));
    bson_strncpy(out->labels + strlen(out->labels), bson_iter_utf8(&label, NULL),
                 sizeof out->labels - strlen(out->labels));
  }
}

static bool is_transient(const attempt_result_t *out, uint32_t code) {
  return code == MONGO_WRITE_CONFLICT ||
         strstr(out->labels, "RetryableWriteError") != NULL ||
         strstr(out->labels, "TransientTransactionError") != NULL;
}

static void set_write_error(attempt_result_t *out, const bson_t *write_error,
                            uint32_t code) {
  bson_iter_t it;
  const char *msg = "write error";
  if (bson_iter_init_find(&it, write_error, "errmsg") && BSON_ITER_HOLDS_UTF8(&it))
    msg = bson_iter_utf8(&it, NULL);
  bson_set_error(&out->error, MONGOC_ERROR_SERVER, code, "%s", msg);
  out->has_error = true;
}

/* Reads the first write error of an insertMany reply into *error_doc (a view
 * into reply), with its code and position; false if there is none. */
static bool first_write_error(const bson_t *reply, bson_t *error_doc, uint32_t *code,
                              size_t *index) {
  bson_iter_t it, errors;
  if (!bson_iter_init_find(&it, reply, "writeErrors") || !BSON_ITER_HOLDS_ARRAY(&it) ||
      !bson_iter_recurse(&it, &errors) || !bson_iter_next(&errors) ||
      !BSON_ITER_HOLDS_DOCUMENT(&errors))
    return false;
  const uint8_t *data;
  uint32_t len;
  bson_iter_document(&errors, &len, &data);
  if (!bson_init_static(error_doc, data, len))
    return false;
  *code = 0;
  if (bson_iter_init_find(&it, error_doc, "code"))
    *code = (uint32_t)bson_iter_as_int64(&it);
  *index = 0;
  if (bson_iter_init_find(&it, error_doc, "index"))
    *index = (size_t)bson_iter_as_int64(&it);
  return true;
}

static size_t inserted_count(const bson_t *reply) {
  bson_iter_t it;
  if (bson_iter_init_find(&it, reply, "insertedCount"))
    return (size_t)bson_iter_as_int64(&it);
  return 0;
}

static void handle_duplicate(mongoc_collection_t *coll, const attempt_config_t *config,
                             const bson_t *write_error, pending_asset_t *item,
                             attempt_result_t *out) {
  bson_error_t error;
  bool failed;
  switch (classify_duplicate(coll, config, write_error, item)) {
  case DUP_VERSION:
    out->outcome = ATTEMPT_CONFLICT;
    return;
  case DUP_OWN_ID: {
    bson_t *stored = find_by_id(coll, item->prepared, &error, &failed);
    bson_iter_t it;
    if (stored && bson_iter_init_find(&it, stored, "version") &&
        asset_read_integer(&it, &item->version)) {
      bson_destroy(item->stored);
      item->stored = stored;
      out->outcome = ATTEMPT_ITEM_FOUND;
      return;
    }
    bson_destroy(stored);
    out->outcome = ATTEMPT_CONFLICT; /* vanished or unreadable: look again */
    return;
  }
  case DUP_OTHER:
    out->outcome = ATTEMPT_ITEM_REJECTED;
    return;
  }
}

/* After a failed insert: why, and what to do with items[committed]. */
static void classify_failure(mongoc_collection_t *coll, const attempt_config_t *config,
                             const bson_t *reply, size_t chunk_inserted,
                             pending_asset_t *items, size_t n, attempt_result_t *out) {
  bson_t write_error;
  uint32_t code;
  size_t index;
  collect_labels(reply, out);
  if (first_write_error(reply, &write_error, &code, &index) && out->committed < n) {
    if (index != chunk_inserted) {
      /* Not "a prefix committed, then one error": we cannot tell which
       * uploads hold which versions, so stop rather than guess. */
      bson_set_error(&out->error, MONGOC_ERROR_SERVER, code,
                     "the server broke ordered-insert semantics (first error at "
                     "%zu after %zu inserted); refusing to guess what was stored",
                     index, chunk_inserted);
      out->has_error = true;
      out->outcome = ATTEMPT_FAILED;
      return;
    }
    set_write_error(out, &write_error, code);
    if (code == MONGO_DUPLICATE_KEY)
      handle_duplicate(coll, config, &write_error, &items[out->committed], out);
    else
      out->outcome = is_transient(out, code) ? ATTEMPT_CONFLICT : ATTEMPT_ITEM_REJECTED;
  } else {
    out->has_error = true;
    if (is_transient(out, out->error.code))
      out->outcome = ATTEMPT_CONFLICT;
    else if (out->error.domain == MONGOC_ERROR_STREAM &&
             out->error.code != MONGOC_ERROR_STREAM_CONNECT &&
             out->error.code != MONGOC_ERROR_STREAM_NAME_RESOLUTION)
      out->outcome = ATTEMPT_UNKNOWN; /* sent, then lost: the server may have committed it */
    else
      out->outcome = ATTEMPT_FAILED;
  }
}

bool attempt_recover(mongoc_collection_t *coll, pending_asset_t *items, size_t n,
                     size_t *found, bson_error_t *error) {
  bson_t filter = BSON_INITIALIZER, id_doc, in;
  BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &id_doc);
  BSON_APPEND_ARRAY_BEGIN(&id_doc, "$in", &in);
  size_t asked = 0;
  for (size_t i = 0; i < n && items[i].id_generated; i++) {
    bson_iter_t it;
    char key[16];
    if (bson_iter_init_find(&it, items[i].prepared, "_id")) {
      snprintf(key, sizeof key, "%zu", asked++);
      BSON_APPEND_VALUE(&in, key, bson_iter_value(&it));
    }
  }
  bson_append_array_end(&id_doc, &in);
  bson_append_document_end(&filter, &id_doc);

  *found = 0;
  bool ok = true;
  if (asked > 0) {
    mongoc_read_prefs_t *prefs = primary_prefs();
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, &filter, NULL, prefs);
    const bson_t *doc;
    while (mongoc_cursor_next(cursor, &doc)) {
      bson_iter_t it, mine;
      if (!bson_iter_init_find(&it, doc, "_id"))
        continue;
      for (size_t i = 0; i < asked; i++) {
        if (bson_iter_init_find(&mine, items[i].prepared, "_id") &&
            bson_iter_type(&mine) == BSON_TYPE_OID && BSON_ITER_HOLDS_OID(&it) &&
            bson_oid_equal(bson_iter_oid(&mine), bson_iter_oid(&it))) {
          bson_iter_t version;
          int64_t v;
          if (bson_iter_init_find(&version, doc, "version") && asset_read_integer(&version, &v)) {
            bson_destroy(items[i].stored);
            items[i].stored = bson_copy(doc);
            items[i].version = v;
            items[i].recovered = true;
          }
          break;
        }
      }
    }
    ok = !mongoc_cursor_error(cursor, error);
    mongoc_cursor_destroy(cursor);
    mongoc_read_prefs_destroy(prefs);
  }
  bson_destroy(&filter);
  while (ok && *found < n && items[*found].recovered)
    (*found)++;
  return ok;
}

void attempt_run(mongoc_collection_t *coll, const attempt_config_t *config,
                 pending_asset_t *items, size_t n, int64_t hint,
                 attempt_result_t *out) {
  memset(out, 0, sizeof *out);
  out->read_highest = hint <= 0;
  int64_t first = hint;
  if (out->read_highest) {
    bson_t filter;
    int64_t highest;
    order_filter_of(items[0].prepared, &filter);
    bool ok = attempt_read_highest(coll, &filter, &highest, &out->error);
    bson_destroy(&filter);
    if (!ok) {
      out->outcome = ATTEMPT_FAILED;
      out->has_error = true;
      return;
    }
    first = highest + 1;
  }

  int64_t now = wall_clock_ms();
  const bson_t **docs = bson_malloc(n * sizeof *docs);
  for (size_t i = 0; i < n; i++) {
    bson_destroy(items[i].stored);
    items[i].version = first + (int64_t)i;
    items[i].stored = asset_build_stored(items[i].prepared, items[i].version, now);
    docs[i] = items[i].stored;
  }

  bson_t opts = BSON_INITIALIZER;
  if (config->write_opts)
    bson_concat(&opts, config->write_opts);
  BSON_APPEND_BOOL(&opts, "ordered", true);

  /* Insert in chunks, stopping at the first chunk that fails: the only way
   * to keep "everything before the first error is committed, nothing after"
   * on FerretDB v1, which splits inserts into 100-document transactions and
   * goes on with the next one after an error even when ordered. */
  bool ok = true;
  for (size_t start = 0; ok && start < n; start += ATTEMPT_INSERT_CHUNK) {
    size_t count = n - start < ATTEMPT_INSERT_CHUNK ? n - start : ATTEMPT_INSERT_CHUNK;
    bson_t reply;
    ok = mongoc_collection_insert_many(coll, docs + start, count, &opts, &reply, &out->error);
    size_t inserted = inserted_count(&reply);
    out->committed += inserted < count ? inserted : count;
    if (!ok)
      classify_failure(coll, config, &reply, inserted, items, n, out);
    bson_destroy(&reply);
  }
  bson_destroy(&opts);
  bson_free(docs);
  if (ok)
    out->outcome = ATTEMPT_DONE;
  out->next_version = first + (int64_t)out->committed;
}
