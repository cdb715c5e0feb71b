#include "attempt.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "asset_doc.h"
#include "duplicate.h"
#include "read_tops.h"

#define MONGO_DUPLICATE_KEY 11000
#define MONGO_WRITE_CONFLICT 112
#define MONGO_UNAUTHORIZED 13

static int64_t wall_clock_ms(void) {
  struct timeval tv;
  bson_gettimeofday(&tv);
  return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* A stored version that is not an integer a JavaScript number holds, or no
 * room above the highest: the order cannot go on, and no retry helps. */
static void out_of_range(bson_error_t *error, const bson_t *order_doc,
                         const char *order_field) {
  char order[160];
  aav_asset_describe_order(order_doc, order_field, order, sizeof order);
  bson_set_error(
      error, ATTEMPT_ERROR_DOMAIN, ATTEMPT_ERROR_VERSION_RANGE,
      "the highest version of order %s is not an integer below 2^53 - 1, so no "
      "next version can be given",
      order);
}

bool aav_attempt_read_highest(mongoc_collection_t *coll, const bson_t *order_filter,
                              const aav_field_names_t *names, int64_t *highest,
                              bson_error_t *error) {
  names = AAV_NAMES(names);
  /* { version: { $gte: 1 } } matches numbers only (MongoDB compares within a
   * type), so a legacy string version neither sorts on top nor breaks us. */
  bson_t filter = BSON_INITIALIZER;
  bson_concat(&filter, order_filter);
  BCON_APPEND(&filter, names->version, "{", "$gte", BCON_INT32(1), "}");
  bson_t *opts =
      BCON_NEW("sort", "{", names->version, BCON_INT32(-1), "}", "projection", "{",
               names->version, BCON_INT32(1), "}", "limit", BCON_INT64(1));
  mongoc_read_prefs_t *prefs = mongoc_read_prefs_new(MONGOC_READ_PRIMARY);
  mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, &filter, opts, prefs);
  const bson_t *doc;
  bson_iter_t it;
  bool ok = true;
  *highest = 0;
  if (mongoc_cursor_next(cursor, &doc) && bson_iter_init_find(&it, doc, names->version) &&
      !aav_asset_read_integer(&it, highest)) {
    out_of_range(error, order_filter, names->order_id);
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

static void order_filter_of(const bson_t *prepared, const char *order_field,
                            bson_t *filter) {
  bson_iter_t it;
  bson_init(filter);
  if (bson_iter_init_find(&it, prepared, order_field))
    BSON_APPEND_VALUE(filter, order_field, bson_iter_value(&it));
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
                      const char *order_field, const bson_iter_t *order, int64_t version,
                      int64_t *tops) {
  for (size_t g = 0; g < groups; g++) {
    bson_iter_t mine;
    if (bson_iter_init_find(&mine, items[starts[g]]->prepared, order_field) &&
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
    return aav_read_tops_each(coll, config->names, items, starts, groups, tops, error);
  const aav_field_names_t *names = AAV_NAMES(config->names);
  char order_path[AAV_FIELD_NAME_MAX + 1], version_path[AAV_FIELD_NAME_MAX + 1];
  snprintf(order_path, sizeof order_path, "$%s", names->order_id);
  snprintf(version_path, sizeof version_path, "$%s", names->version);
  bson_t match = BSON_INITIALIZER, order, in;
  BSON_APPEND_DOCUMENT_BEGIN(&match, names->order_id, &order);
  BSON_APPEND_ARRAY_BEGIN(&order, "$in", &in);
  for (size_t g = 0; g < groups; g++) {
    bson_iter_t it;
    char key[24];
    snprintf(key, sizeof key, "%zu", g);
    if (bson_iter_init_find(&it, items[starts[g]]->prepared, names->order_id))
      BSON_APPEND_VALUE(&in, key, bson_iter_value(&it));
    tops[g] = 0;
  }
  bson_append_array_end(&order, &in);
  bson_append_document_end(&match, &order);
  BCON_APPEND(&match, names->version, "{", "$gte", BCON_INT32(1), "}");

  mongoc_read_prefs_t *prefs = mongoc_read_prefs_new(MONGOC_READ_PRIMARY);
  bool grouped = !config->tops_by_find || !atomic_load(config->tops_by_find);
  mongoc_cursor_t *cursor;
  if (grouped) {
    bson_t *pipeline =
        BCON_NEW("pipeline", "[", "{", "$match", BCON_DOCUMENT(&match), "}", "{", "$sort",
                 "{", names->order_id, BCON_INT32(-1), names->version, BCON_INT32(-1),
                 "}", "}", "{", "$group", "{", "_id", BCON_UTF8(order_path), "version",
                 "{", "$first", BCON_UTF8(version_path), "}", "}", "}", "]");
    cursor = mongoc_collection_aggregate(coll, MONGOC_QUERY_NONE, pipeline, NULL, prefs);
    bson_destroy(pipeline);
  } else {
    bson_t *opts = BCON_NEW("projection", "{", "_id", BCON_INT32(0), names->order_id,
                            BCON_INT32(1), names->version, BCON_INT32(1), "}");
    cursor = mongoc_collection_find_with_opts(coll, &match, opts, prefs);
    bson_destroy(opts);
  }
  const bson_t *doc;
  bool ok = true;
  while (ok && mongoc_cursor_next(cursor, &doc)) {
    bson_iter_t order_it, version_it;
    int64_t version;
    if (!bson_iter_init_find(&order_it, doc, grouped ? "_id" : names->order_id) ||
        !bson_iter_init_find(&version_it, doc, grouped ? "version" : names->version))
      continue;
    if (!aav_asset_read_integer(&version_it, &version)) {
      bson_t order_doc = BSON_INITIALIZER;
      BSON_APPEND_VALUE(&order_doc, names->order_id, bson_iter_value(&order_it));
      out_of_range(error, &order_doc, names->order_id);
      bson_destroy(&order_doc);
      ok = false;
      break;
    }
    raise_top(items, starts, groups, names->order_id, &order_it, version, tops);
  }
  if (ok && mongoc_cursor_error(cursor, error))
    ok = false;
  mongoc_cursor_destroy(cursor);
  mongoc_read_prefs_destroy(prefs);
  if (!ok && grouped && is_unsupported(error) && config->tops_by_find) {
    atomic_store(config->tops_by_find,
                 aav_read_tops_strategy(coll, config->names, items[starts[0]]->prepared));
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
  const aav_field_names_t *names = AAV_NAMES(config->names);
  *groups = 0;
  for (size_t i = 0; i < n; i++)
    if (i == 0 || !aav_asset_same_field(items[i - 1]->prepared, items[i]->prepared,
                                        names->order_id))
      starts[(*groups)++] = i;
  if (*groups > 1)
    return read_many_tops(coll, config, items, starts, *groups, tops, error);
  bson_t filter;
  order_filter_of(items[0]->prepared, names->order_id, &filter);
  bool ok = aav_attempt_read_highest(coll, &filter, names, &tops[0], error);
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
  *code =
      bson_iter_init_find(&it, error_doc, "code") ? (uint32_t)bson_iter_as_int64(&it) : 0;
  *index =
      bson_iter_init_find(&it, error_doc, "index") ? (size_t)bson_iter_as_int64(&it) : 0;
  return true;
}

/* libmongoc gathers the reply's writeConcernError into this array. */
static bool has_write_concern_error(const bson_t *reply) {
  bson_iter_t it, errors;
  return bson_iter_init_find(&it, reply, "writeConcernErrors") &&
         BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &errors) &&
         bson_iter_next(&errors);
}

static size_t inserted_count(const bson_t *reply) {
  bson_iter_t it;
  return bson_iter_init_find(&it, reply, "insertedCount")
             ? (size_t)bson_iter_as_int64(&it)
             : 0;
}

static void set_write_error(attempt_result_t *out, const bson_t *write_error,
                            uint32_t code) {
  bson_iter_t it;
  const char *msg = "write error";
  if (bson_iter_init_find(&it, write_error, "errmsg") && BSON_ITER_HOLDS_UTF8(&it))
    msg = bson_iter_utf8(&it, NULL);
  bson_set_error(&out->error, MONGOC_ERROR_SERVER, code, "%s", msg);
}

/* For a role that may insert and find but not update: the document read
 * back under majority read concern is majority-committed, which covers the
 * default concerns (w: 1, majority), though not w above a majority. */
static bool confirm_by_majority_read(mongoc_collection_t *coll, const bson_t *filter,
                                     bson_error_t *error) {
  bson_t *opts =
      BCON_NEW("readConcern", "{", "level", "majority", "}", "limit", BCON_INT64(1));
  mongoc_read_prefs_t *prefs = mongoc_read_prefs_new(MONGOC_READ_PRIMARY);
  mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, filter, opts, prefs);
  const bson_t *doc;
  bool found = mongoc_cursor_next(cursor, &doc);
  bool ok = !mongoc_cursor_error(cursor, error);
  if (ok && !found)
    bson_set_error(
        error, MONGOC_ERROR_WRITE_CONCERN, 64,
        "the write concern could not be confirmed: not found by a majority read");
  mongoc_cursor_destroy(cursor);
  mongoc_read_prefs_destroy(prefs);
  bson_destroy(opts);
  return ok && found;
}

/* A document found stored is only as durable as the write concern in force
 * confirms: the repository's option, else the URI's (libmongoc applies it to
 * every write), else the server's default (majority on MongoDB 5+). So it is
 * always confirmed, never taken as confirmed because no option was given. A
 * no-op update waits for that concern: the server waits for the latest write
 * it knows, ours included. */
static bool confirm_durable(mongoc_collection_t *coll, const attempt_config_t *config,
                            const pending_asset_t *item, bson_error_t *error) {
  bson_iter_t it;
  bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, set, reply;
  if (bson_iter_init_find(&it, item->stored, "_id"))
    BSON_APPEND_VALUE(&filter, "_id", bson_iter_value(&it));
  BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
  aav_asset_append_version(&set, AAV_NAMES(config->names)->version, item->version);
  bson_append_document_end(&update, &set);
  bool ok = mongoc_collection_update_one(coll, &filter, &update, config->write_opts,
                                         &reply, error);
  if (ok && has_write_concern_error(&reply)) {
    bson_set_error(error, MONGOC_ERROR_WRITE_CONCERN, 64,
                   "the write concern could not be confirmed");
    ok = false;
  } else if (!ok && error->domain == MONGOC_ERROR_SERVER &&
             error->code == MONGO_UNAUTHORIZED) {
    ok = confirm_by_majority_read(coll, &filter, error);
  }
  bson_destroy(&reply);
  bson_destroy(&update);
  bson_destroy(&filter);
  return ok;
}

static bool take_stored(const attempt_config_t *config, pending_asset_t *item,
                        bson_t *stored) {
  bson_iter_t it;
  int64_t version;
  if (!bson_iter_init_find(&it, stored, AAV_NAMES(config->names)->version) ||
      !aav_asset_read_integer(&it, &version)) {
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
  switch (aav_duplicate_classify(coll, config->version_index, config->names, write_error,
                                 item->stored, &same, index, sizeof index)) {
  case DUPLICATE_VERSION:
    out->outcome = ATTEMPT_CONFLICT;
    return;
  case DUPLICATE_SAME_UPLOAD:
    if (!take_stored(config, item, same)) {
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

/* Errors after which what the insert applied can be known: the server
 * answered (its reply may still not say what it applied), or the driver
 * refused the command before sending it. Anything else is unknown, even "no
 * suitable servers" or "failed to connect": libmongoc reports those for an
 * insert whose connection broke after sending when the server went away
 * (seen with a FerretDB front end killed mid-insert over PostgreSQL: the
 * insert had committed). When the server is down before an attempt, it is
 * the read of the top, sent first, that fails, and that failure is certain. */
static bool answered_or_unsent(const bson_error_t *error) {
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

/* Server codes that refuse the command, whatever documents it carries. */
static bool refuses_command(const bson_error_t *error) {
  static const uint32_t codes[] = {6,    7,    9,     13,    18,    26,    50,
                                   59,   72,   73,    89,    91,    189,   262,
                                   8000, 9001, 10107, 11600, 11602, 13435, 13436};
  if (error->domain != MONGOC_ERROR_SERVER)
    return false;
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
    if (error->code == codes[i])
      return true;
  return false;
}

static bool is_transient(const bson_error_t *error, const attempt_result_t *out) {
  return error->domain == MONGOC_ERROR_SERVER &&
         (error->code == MONGO_WRITE_CONFLICT ||
          has_label(out, "TransientTransactionError"));
}

/* A failed insert command: was anything applied, and what now? Only two
 * replies prove it: "this prefix, then one write error", and a refusal the
 * driver made before sending. Any other failure is looked up by _id before
 * its uploads go again. */
static void classify_failure(mongoc_collection_t *coll, const attempt_config_t *config,
                             const bson_t *reply, size_t before, size_t chunk_sent,
                             size_t chunk_inserted, pending_asset_t **items,
                             attempt_result_t *out) {
  bson_t write_error;
  uint32_t code = 0;
  size_t index = 0;
  collect_labels(reply, out);
  if (!answered_or_unsent(&out->error) || has_label(out, "RetryableWriteError")) {
    /* Sent, and no answer that says what happened (the connection broke, a
     * reply the driver could not read), or the server itself says the outcome
     * may be unknown (a step-down, a shutdown mid-write): it may have been
     * applied, even later than now. */
    out->committed = before;
    out->outcome = ATTEMPT_UNKNOWN;
    return;
  }
  /* A writeConcernError says only that what was applied is not confirmed;
   * the write errors beside it are classified as usual. */
  if (has_write_concern_error(reply))
    out->confirmed = before;
  if (first_write_error(reply, &write_error, &code, &index)) {
    if (index != chunk_inserted || index >= chunk_sent) {
      /* Not "a prefix committed, then one error": we cannot tell which
       * uploads hold which versions. */
      bson_set_error(
          &out->error, MONGOC_ERROR_SERVER, code,
          "the server broke ordered-insert semantics (first error at %zu after "
          "%zu inserted)",
          index, chunk_inserted);
      out->committed = before;
      out->outcome = ATTEMPT_UNPROVEN;
      out->look_first = true;
      out->splittable = true;
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
  if (out->error.domain == MONGOC_ERROR_WRITE_CONCERN && chunk_inserted == chunk_sent) {
    out->outcome = ATTEMPT_WRITE_CONCERN;
    return;
  }
  /* Refused whole, or answered without saying what was applied. FerretDB
   * inserts a failed chunk one document at a time and answers ok: 0 at the
   * first document it cannot store, after committing those before it. */
  bool sent = out->error.domain == MONGOC_ERROR_SERVER ||
              out->error.domain == MONGOC_ERROR_WRITE_CONCERN;
  out->committed = before;
  out->look_first = sent;
  out->splittable = !refuses_command(&out->error);
  out->outcome = is_transient(&out->error, out) ? ATTEMPT_TRANSIENT : ATTEMPT_UNPROVEN;
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
      if (aav_asset_same_field(doc, items[i]->prepared,
                               AAV_NAMES(config->names)->order_id) &&
          take_stored(config, items[i], bson_copy(doc))) {
        items[i]->found = true;
        last_found = items[i];
      }
      break;
    }
  }
  bool ok = !mongoc_cursor_error(cursor, error);
  mongoc_cursor_destroy(cursor);
  mongoc_read_prefs_destroy(prefs);
  bson_destroy(opts);
  bson_destroy(&filter);
  /* One confirmation covers every write before it. A look cut half-way
   * keeps what it found only if that can still be confirmed; otherwise the
   * next look finds it again and confirms. */
  bson_error_t confirm_error;
  if (last_found && !confirm_durable(coll, config, last_found, &confirm_error)) {
    if (ok) {
      *unconfirmed = true;
      *error = confirm_error;
    } else {
      for (size_t i = 0; i < n; i++)
        items[i]->found = false;
    }
  }
  return ok;
}

void aav_attempt_run(mongoc_collection_t *coll, const attempt_config_t *config,
                     pending_asset_t **items, size_t n, attempt_result_t *out) {
  memset(out, 0, sizeof *out);
  out->confirmed = SIZE_MAX; /* lowered by a writeConcernError */
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
    if (tops[g] > AAV_LIMIT_MAX_VERSION - (int64_t)count) {
      out_of_range(&out->error, items[starts[g]]->prepared,
                   AAV_NAMES(config->names)->order_id);
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
      items[i]->stored = aav_asset_build_stored(items[i]->prepared, items[i]->version,
                                                now, config->names);
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
    ok = mongoc_collection_insert_many(coll, docs + start, count, &opts, &reply,
                                       &out->error);
    size_t inserted = inserted_count(&reply);
    out->committed += inserted < count ? inserted : count;
    if (!ok) {
      classify_failure(coll, config, &reply, before, count, inserted, items, out);
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
  if (out->confirmed > out->committed)
    out->confirmed = out->committed; /* no writeConcernError: all confirmed */
}
