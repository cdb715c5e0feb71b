#include "attempt.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "asset_doc.h"
#include "duplicate.h"
#include "read_tops.h"

#define MONGO_DUPLICATE_KEY 11000
#define MONGO_WRITE_CONFLICT 112

static int64_t wall_clock_ms(void) {
  struct timeval tv;
  bson_gettimeofday(&tv);
  return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* A stored version that is not an integer a JavaScript number holds, or no
 * room above the highest: the order cannot go on, and no retry helps. */
static void out_of_range(bson_error_t *error, const bson_t *order_doc) {
  char order[160];
  aav_asset_describe_order(order_doc, order, sizeof order);
  bson_set_error(error, ATTEMPT_ERROR_DOMAIN, ATTEMPT_ERROR_VERSION_RANGE,
                 "the highest version of order %s is not an integer below 2^53 - 1, so no "
                 "next version can be given",
                 order);
}

bool aav_attempt_read_highest(mongoc_collection_t *coll, const bson_t *order_filter,
                          int64_t *highest, bson_error_t *error) {
  /* { version: { $gte: 1 } } matches numbers only (MongoDB compares within a
   * type), so a legacy string version neither sorts on top nor breaks us. */
  bson_t filter = BSON_INITIALIZER;
  bson_concat(&filter, order_filter);
  BCON_APPEND(&filter, "version", "{", "$gte", BCON_INT32(1), "}");
  bson_t *opts = BCON_NEW("sort", "{", "version", BCON_INT32(-1), "}", "projection", "{",
                          "version", BCON_INT32(1), "}", "limit", BCON_INT64(1));
  mongoc_read_prefs_t *prefs = mongoc_read_prefs_new(MONGOC_READ_PRIMARY);
  mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, &filter, opts, prefs);
  const bson_t *doc;
  bson_iter_t it;
  bool ok = true;
  *highest = 0;
  if (mongoc_cursor_next(cursor, &doc) && bson_iter_init_find(&it, doc, "version") &&
      !aav_asset_read_integer(&it, highest)) {
    out_of_range(error, order_filter);
    ok = false;
  }
  if (ok && mongoc_cursor_error(cursor, error))
    ok = false;
  mongoc_cursor_destroy(cursor);
  mongoc_read_prefs_destroy(prefs);
  bson_destroy(opts);
  bson_destroy(&filter);
  return ok;
}

static void order_filter_of(const bson_t *prepared, bson_t *filter) {
  bson_iter_t it;
  bson_init(filter);
  if (bson_iter_init_find(&it, prepared, "orderId"))
    BSON_APPEND_VALUE(filter, "orderId", bson_iter_value(&it));
}

/* orderId is a string or an ObjectId (asset_validate): equal when type and
 * bytes are. Cheaper than building documents for bson_equal. */
static bool same_order_value(const bson_iter_t *a, const bson_iter_t *b) {
  if (bson_iter_type(a) != bson_iter_type(b))
    return false;
  if (BSON_ITER_HOLDS_OID(a))
    return bson_oid_equal(bson_iter_oid(a), bson_iter_oid(b));
  uint32_t la, lb;
  const char *sa = bson_iter_utf8(a, &la), *sb = bson_iter_utf8(b, &lb);
  return sa && sb && la == lb && memcmp(sa, sb, la) == 0;
}

/* Raises the top of the group whose order is `order` to `version`. */
static void raise_top(pending_asset_t **items, const size_t *starts, size_t groups,
                      const bson_iter_t *order, int64_t version, int64_t *tops) {
  for (size_t g = 0; g < groups; g++) {
    bson_iter_t mine;
    if (bson_iter_init_find(&mine, items[starts[g]]->prepared, "orderId") &&
        same_order_value(&mine, order)) {
      if (version > tops[g])
        tops[g] = version;
      return;
    }
  }
}

static bool is_unsupported(const bson_error_t *error) {
  /* NotImplemented (FerretDB v1 has no $first in $group), unknown group
   * operator, unrecognized stage. */
  return error->domain == MONGOC_ERROR_SERVER &&
         (error->code == 238 || error->code == 15952 || error->code == 40324);
}

/* The highest numeric version of each of many orders in one round trip. On
 * MongoDB, $sort + $group/$first on the (orderId, version) index is a
 * distinct scan: one index probe per order. Where the server lacks it, what
 * aav_read_tops_strategy picks (read_tops.h). */
static bool read_many_tops(mongoc_collection_t *coll, const attempt_config_t *config,
                           pending_asset_t **items, const size_t *starts, size_t groups,
                           int64_t *tops, bson_error_t *error) {
  if (config->tops_by_find && atomic_load(config->tops_by_find) == TOPS_EACH_ORDER)
    return aav_read_tops_each(coll, items, starts, groups, tops, error);
  bson_t match = BSON_INITIALIZER, order, in;
  BSON_APPEND_DOCUMENT_BEGIN(&match, "orderId", &order);
  BSON_APPEND_ARRAY_BEGIN(&order, "$in", &in);
  for (size_t g = 0; g < groups; g++) {
    bson_iter_t it;
    char key[24];
    snprintf(key, sizeof key, "%zu", g);
    if (bson_iter_init_find(&it, items[starts[g]]->prepared, "orderId"))
      BSON_APPEND_VALUE(&in, key, bson_iter_value(&it));
    tops[g] = 0;
  }
  bson_append_array_end(&order, &in);
  bson_append_document_end(&match, &order);
  BCON_APPEND(&match, "version", "{", "$gte", BCON_INT32(1), "}");

  mongoc_read_prefs_t *prefs = mongoc_read_prefs_new(MONGOC_READ_PRIMARY);
  bool grouped = !config->tops_by_find || !atomic_load(config->tops_by_find);
  mongoc_cursor_t *cursor;
  if (grouped) {
    bson_t *pipeline = BCON_NEW("pipeline", "[", "{", "$match", BCON_DOCUMENT(&match), "}", "{",
                                "$sort", "{", "orderId", BCON_INT32(-1), "version",
                                BCON_INT32(-1), "}", "}", "{", "$group", "{", "_id",
                                BCON_UTF8("$orderId"), "version", "{", "$first",
                                BCON_UTF8("$version"), "}", "}", "}", "]");
    cursor = mongoc_collection_aggregate(coll, MONGOC_QUERY_NONE, pipeline, NULL, prefs);
    bson_destroy(pipeline);
  } else {
    bson_t *opts = BCON_NEW("projection", "{", "_id", BCON_INT32(0), "orderId", BCON_INT32(1),
                            "version", BCON_INT32(1), "}");
    cursor = mongoc_collection_find_with_opts(coll, &match, opts, prefs);
    bson_destroy(opts);
  }
  const bson_t *doc;
  bool ok = true;
  while (ok && mongoc_cursor_next(cursor, &doc)) {
    bson_iter_t order_it, version_it;
    int64_t version;
    if (!bson_iter_init_find(&order_it, doc, grouped ? "_id" : "orderId") ||
        !bson_iter_init_find(&version_it, doc, "version"))
      continue;
    if (!aav_asset_read_integer(&version_it, &version)) {
      bson_t order_doc = BSON_INITIALIZER;
      BSON_APPEND_VALUE(&order_doc, "orderId", bson_iter_value(&order_it));
      out_of_range(error, &order_doc);
      bson_destroy(&order_doc);
      ok = false;
      break;
    }
    raise_top(items, starts, groups, &order_it, version, tops);
  }
  if (ok && mongoc_cursor_error(cursor, error))
    ok = false;
  mongoc_cursor_destroy(cursor);
  mongoc_read_prefs_destroy(prefs);
  if (!ok && grouped && is_unsupported(error) && config->tops_by_find) {
    atomic_store(config->tops_by_find, aav_read_tops_strategy(coll, items[starts[0]]->prepared));
    ok = read_many_tops(coll, config, items, starts, groups, tops, error);
  }
  bson_destroy(&match);
  return ok;
}

/* Splits items into their orders (each order's items are contiguous) and
 * reads each order's highest version: *groups of them, starting at starts[]. */
static bool read_tops(mongoc_collection_t *coll, const attempt_config_t *config,
                      pending_asset_t **items, size_t n, size_t *starts, size_t *groups,
                      int64_t *tops, bson_error_t *error) {
  *groups = 0;
  for (size_t i = 0; i < n; i++)
    if (i == 0 || !aav_asset_same_field(items[i - 1]->prepared, items[i]->prepared, "orderId"))
      starts[(*groups)++] = i;
  if (*groups > 1)
    return read_many_tops(coll, config, items, starts, *groups, tops, error);
  bson_t filter;
  order_filter_of(items[0]->prepared, &filter);
  bool ok = aav_attempt_read_highest(coll, &filter, &tops[0], error);
  bson_destroy(&filter);
  return ok;
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
    size_t used = strlen(out->labels);
    snprintf(out->labels + used, sizeof out->labels - used, "%s%s", used ? "," : "",
             bson_iter_utf8(&label, NULL));
  }
}

static bool has_label(const attempt_result_t *out, const char *label) {
  return strstr(out->labels, label) != NULL;
}

/* The first write error of an insert reply, as a view into the reply. */
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
  *code = bson_iter_init_find(&it, error_doc, "code") ? (uint32_t)bson_iter_as_int64(&it) : 0;
  *index = bson_iter_init_find(&it, error_doc, "index") ? (size_t)bson_iter_as_int64(&it) : 0;
  return true;
}

/* libmongoc gathers the reply's writeConcernError into this array. */
static bool has_write_concern_error(const bson_t *reply) {
  bson_iter_t it, errors;
  return bson_iter_init_find(&it, reply, "writeConcernErrors") && BSON_ITER_HOLDS_ARRAY(&it) &&
         bson_iter_recurse(&it, &errors) && bson_iter_next(&errors);
}

static size_t inserted_count(const bson_t *reply) {
  bson_iter_t it;
  return bson_iter_init_find(&it, reply, "insertedCount") ? (size_t)bson_iter_as_int64(&it) : 0;
}

static void set_write_error(attempt_result_t *out, const bson_t *write_error, uint32_t code) {
  bson_iter_t it;
  const char *msg = "write error";
  if (bson_iter_init_find(&it, write_error, "errmsg") && BSON_ITER_HOLDS_UTF8(&it))
    msg = bson_iter_utf8(&it, NULL);
  bson_set_error(&out->error, MONGOC_ERROR_SERVER, code, "%s", msg);
}

/* Under a write concern, a document found stored is only as durable as the
 * concern confirms. A no-op update with that concern waits for it: the
 * server waits for the latest write it knows, ours included. */
static bool confirm_durable(mongoc_collection_t *coll, const attempt_config_t *config,
                            const pending_asset_t *item, bson_error_t *error) {
  bson_iter_t it;
  if (!config->write_opts || !bson_iter_init_find(&it, config->write_opts, "writeConcern"))
    return true;
  bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, set, reply;
  if (bson_iter_init_find(&it, item->stored, "_id"))
    BSON_APPEND_VALUE(&filter, "_id", bson_iter_value(&it));
  BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
  aav_asset_append_version(&set, "version", item->version);
  bson_append_document_end(&update, &set);
  bool ok = mongoc_collection_update_one(coll, &filter, &update, config->write_opts, &reply,
                                         error);
  if (ok && has_write_concern_error(&reply)) {
    bson_set_error(error, MONGOC_ERROR_WRITE_CONCERN, 64,
                   "the write concern could not be confirmed");
    ok = false;
  }
  bson_destroy(&reply);
  bson_destroy(&update);
  bson_destroy(&filter);
  return ok;
}

static bool take_stored(pending_asset_t *item, bson_t *stored) {
  bson_iter_t it;
  int64_t version;
  if (!bson_iter_init_find(&it, stored, "version") || !aav_asset_read_integer(&it, &version)) {
    bson_destroy(stored);
    return false;
  }
  bson_destroy(item->stored);
  item->stored = stored;
  item->version = version;
  item->read_back = true;
  return true;
}

static void handle_duplicate(mongoc_collection_t *coll, const attempt_config_t *config,
                             const bson_t *write_error, pending_asset_t *item,
                             attempt_result_t *out) {
  bson_t *same = NULL;
  char index[128];
  switch (aav_duplicate_classify(coll, config->version_index, write_error, item->stored, &same,
                             index, sizeof index)) {
  case DUPLICATE_VERSION:
    out->outcome = ATTEMPT_CONFLICT;
    return;
  case DUPLICATE_SAME_UPLOAD:
    if (!take_stored(item, same)) {
      out->outcome = ATTEMPT_CONFLICT; /* unreadable: look again */
      return;
    }
    out->outcome = ATTEMPT_ITEM_FOUND;
    out->unconfirmed = !confirm_durable(coll, config, item, &out->error);
    return;
  case DUPLICATE_UNSURE:
    out->outcome = ATTEMPT_UNKNOWN; /* items[committed] on: settle by _id */
    return;
  case DUPLICATE_OTHER:
    if (index[0])
      bson_set_error(&out->error, MONGOC_ERROR_SERVER, MONGO_DUPLICATE_KEY,
                     "E11000 duplicate key error: index %s already holds this upload's "
                     "values",
                     index);
    out->outcome = ATTEMPT_ITEM_REJECTED;
    return;
  }
}

/* Errors after which the insert was certainly not applied beyond what the
 * reply says: the server answered it, or the driver refused it before
 * sending. Anything else is unknown, even "no suitable servers" or "failed
 * to connect": libmongoc reports those for an insert whose connection broke
 * after sending when the server went away (seen with a FerretDB front end
 * killed mid-insert over PostgreSQL: the insert had committed). When the
 * server is down before an attempt, it is the read of the top, sent first,
 * that fails, and that failure is certain. */
static bool certainly_not_applied(const bson_error_t *error) {
  switch (error->domain) {
  case MONGOC_ERROR_SERVER:
  case MONGOC_ERROR_WRITE_CONCERN:
  case MONGOC_ERROR_BSON:
    return true;
  case MONGOC_ERROR_COMMAND:
    return error->code == MONGOC_ERROR_COMMAND_INVALID_ARG;
  default:
    return false;
  }
}

/* A failed insert command: was anything applied, and what now? */
static void classify_failure(mongoc_collection_t *coll, const attempt_config_t *config,
                             const bson_t *reply, size_t before, size_t chunk_sent,
                             size_t chunk_inserted, pending_asset_t **items, size_t n,
                             attempt_result_t *out) {
  bson_t write_error;
  uint32_t code = 0;
  size_t index = 0;
  collect_labels(reply, out);
  bool write_errors = first_write_error(reply, &write_error, &code, &index);
  if (!certainly_not_applied(&out->error)) {
    /* Sent, and no answer that says what happened (the connection broke, a
     * reply the driver could not read): whatever the labels say, the server
     * may have applied it. */
    out->committed = before;
    out->outcome = ATTEMPT_UNKNOWN;
    return;
  }
  if (has_label(out, "RetryableWriteError")) {
    /* The server itself says the outcome may be unknown (a step-down, a
     * shutdown mid-write): settle it by _id before anything else. */
    out->committed = before;
    out->outcome = ATTEMPT_UNKNOWN;
    return;
  }
  if (has_write_concern_error(reply)) {
    out->confirmed = before;
    out->outcome = ATTEMPT_WRITE_CONCERN;
    return;
  }
  if (write_errors && out->committed < n) {
    if (index != chunk_inserted || index >= chunk_sent) {
      /* Not "a prefix committed, then one error": we cannot tell which
       * uploads hold which versions, so we must find out by _id. */
      bson_set_error(&out->error, MONGOC_ERROR_SERVER, code,
                     "the server broke ordered-insert semantics (first error at %zu after "
                     "%zu inserted)",
                     index, chunk_inserted);
      out->committed = before;
      out->outcome = ATTEMPT_UNKNOWN;
      return;
    }
    set_write_error(out, &write_error, code);
    if (code == MONGO_DUPLICATE_KEY)
      handle_duplicate(coll, config, &write_error, items[out->committed], out);
    else if (code == MONGO_WRITE_CONFLICT || has_label(out, "TransientTransactionError"))
      out->outcome = ATTEMPT_TRANSIENT;
    else
      out->outcome = ATTEMPT_ITEM_REJECTED;
    return;
  }
  if (out->error.domain == MONGOC_ERROR_SERVER &&
      (out->error.code == MONGO_WRITE_CONFLICT || has_label(out, "TransientTransactionError")))
    out->outcome = ATTEMPT_TRANSIENT;
  else
    out->outcome = ATTEMPT_FAILED; /* refused as a whole, or never sent */
}

bool aav_attempt_recover(mongoc_collection_t *coll, const attempt_config_t *config,
                     pending_asset_t **items, size_t n, bool *unconfirmed,
                     bson_error_t *error) {
  bson_t filter = BSON_INITIALIZER, id_doc, in;
  BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &id_doc);
  BSON_APPEND_ARRAY_BEGIN(&id_doc, "$in", &in);
  for (size_t i = 0; i < n; i++) {
    bson_iter_t it;
    char key[24];
    if (bson_iter_init_find(&it, items[i]->prepared, "_id")) {
      snprintf(key, sizeof key, "%zu", i);
      BSON_APPEND_VALUE(&in, key, bson_iter_value(&it));
    }
  }
  bson_append_array_end(&id_doc, &in);
  bson_append_document_end(&filter, &id_doc);

  *unconfirmed = false;
  /* Half a chunk per reply: a recovery cut off mid-way keeps what it read,
   * so the uploads it found settle as stored even then. */
  bson_t *opts = BCON_NEW("batchSize", BCON_INT64(ATTEMPT_INSERT_CHUNK / 2));
  mongoc_read_prefs_t *prefs = mongoc_read_prefs_new(MONGOC_READ_PRIMARY);
  mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, &filter, opts, prefs);
  const bson_t *doc;
  pending_asset_t *last_found = NULL;
  while (mongoc_cursor_next(cursor, &doc)) {
    bson_iter_t it, mine;
    if (!bson_iter_init_find(&it, doc, "_id"))
      continue;
    for (size_t i = 0; i < n; i++) {
      if (!bson_iter_init_find(&mine, items[i]->prepared, "_id") ||
          !aav_asset_same_field(doc, items[i]->prepared, "_id"))
        continue;
      /* An _id of another order is not this upload; the insert will say so. */
      if (aav_asset_same_field(doc, items[i]->prepared, "orderId") &&
          take_stored(items[i], bson_copy(doc))) {
        items[i]->found = true;
        last_found = items[i];
      }
      break;
    }
  }
  bool ok = !mongoc_cursor_error(cursor, error);
  mongoc_cursor_destroy(cursor);
  if (!ok && config->write_opts && bson_has_field(config->write_opts, "writeConcern")) {
    /* Found, but the look was cut before the write concern could be
     * confirmed: the next look finds them again and confirms. */
    for (size_t i = 0; i < n; i++)
      items[i]->found = false;
    last_found = NULL;
  }
  mongoc_read_prefs_destroy(prefs);
  bson_destroy(opts);
  bson_destroy(&filter);
  /* One confirmation covers every write before it. */
  if (ok && last_found && !confirm_durable(coll, config, last_found, error))
    *unconfirmed = true;
  return ok;
}

void aav_attempt_run(mongoc_collection_t *coll, const attempt_config_t *config,
                 pending_asset_t **items, size_t n, attempt_result_t *out) {
  memset(out, 0, sizeof *out);
  size_t *starts = bson_malloc(n * sizeof *starts), groups;
  int64_t *tops = bson_malloc(n * sizeof *tops);
  bool read = read_tops(coll, config, items, n, starts, &groups, tops, &out->error);
  if (!read) {
    bson_free(starts);
    bson_free(tops);
    out->outcome = ATTEMPT_FAILED; /* nothing was sent */
    return;
  }

  for (size_t g = 0; g < groups; g++) {
    size_t count = (g + 1 < groups ? starts[g + 1] : n) - starts[g];
    if (tops[g] > ATTEMPT_MAX_VERSION - (int64_t)count) {
      out_of_range(&out->error, items[starts[g]]->prepared);
      bson_free(starts);
      bson_free(tops);
      out->outcome = ATTEMPT_FAILED;
      return;
    }
  }

  /* Each order's items take consecutive versions above its top, in order. */
  int64_t now = wall_clock_ms();
  const bson_t **docs = bson_malloc(n * sizeof *docs);
  for (size_t g = 0; g < groups; g++) {
    size_t end = g + 1 < groups ? starts[g + 1] : n;
    for (size_t i = starts[g]; i < end; i++) {
      bson_destroy(items[i]->stored);
      items[i]->version = tops[g] + 1 + (int64_t)(i - starts[g]);
      items[i]->stored = aav_asset_build_stored(items[i]->prepared, items[i]->version, now);
      items[i]->created_ms = now;
      items[i]->read_back = false;
      docs[i] = items[i]->stored;
    }
  }
  bson_free(starts);
  bson_free(tops);

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
    size_t before = out->committed;
    ok = mongoc_collection_insert_many(coll, docs + start, count, &opts, &reply, &out->error);
    size_t inserted = inserted_count(&reply);
    out->committed += inserted < count ? inserted : count;
    if (!ok) {
      classify_failure(coll, config, &reply, before, count, inserted, items, n, out);
    } else if (inserted < count) {
      /* "ok" without saying that everything was inserted (an unacknowledged
       * write): we cannot tell what was stored. */
      bson_set_error(&out->error, MONGOC_ERROR_SERVER, 0,
                     "the server acknowledged %zu of %zu documents", inserted, count);
      out->committed = before;
      out->outcome = ATTEMPT_UNKNOWN;
      ok = false;
    }
    bson_destroy(&reply);
  }
  bson_destroy(&opts);
  bson_free(docs);
  if (ok)
    out->outcome = ATTEMPT_DONE;
  if (out->outcome != ATTEMPT_WRITE_CONCERN)
    out->confirmed = out->committed;
}
