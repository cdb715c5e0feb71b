#include "duplicate.h"

#include <string.h>

#include "asset_doc.h"
#include "version_index.h"

static bson_t *find_one(mongoc_collection_t *coll, const bson_t *filter,
                        bson_error_t *error, bool *failed) {
  mongoc_read_prefs_t *prefs = mongoc_read_prefs_new(MONGOC_READ_PRIMARY);
  bson_t *opts = BCON_NEW("limit", BCON_INT64(1));
  mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, filter, opts, prefs);
  const bson_t *doc;
  bson_t *found = NULL;
  if (mongoc_cursor_next(cursor, &doc))
    found = bson_copy(doc);
  *failed = mongoc_cursor_error(cursor, error);
  mongoc_cursor_destroy(cursor);
  bson_destroy(opts);
  mongoc_read_prefs_destroy(prefs);
  return found;
}

bool aav_duplicate_find_same_upload(mongoc_collection_t *coll,
                                    const aav_field_names_t *names, const bson_t *doc,
                                    bson_t **stored, bool *other_order,
                                    bson_error_t *error) {
  bson_t filter = BSON_INITIALIZER;
  bson_iter_t it;
  bool failed;
  *stored = NULL;
  *other_order = false;
  if (bson_iter_init_find(&it, doc, "_id"))
    BSON_APPEND_VALUE(&filter, "_id", bson_iter_value(&it));
  bson_t *found = find_one(coll, &filter, error, &failed);
  bson_destroy(&filter);
  if (failed) {
    bson_destroy(found);
    return false;
  }
  if (found && !aav_asset_same_field(found, doc, AAV_NAMES(names)->order_id)) {
    *other_order = true;
    bson_destroy(found);
    found = NULL;
  }
  *stored = found;
  return true;
}

/* An index over a field the addon sets (version, versionLabel) refuses what
 * the version index would: a lost race, to be retried. */
static bool holds_owned_field(const bson_t *key, const aav_field_names_t *names) {
  return bson_has_field(key, names->version) ||
         (names->version_label[0] != '\0' && bson_has_field(key, names->version_label));
}

/* The name of the unique index a server named in its write error, or "". */
static void named_index(const bson_t *write_error, const char *version_index,
                        const aav_field_names_t *names, duplicate_kind_t *kind,
                        bool *is_id, bool *named) {
  bson_iter_t it;
  *named = *is_id = false;
  if (bson_iter_init_find(&it, write_error, "keyPattern") &&
      BSON_ITER_HOLDS_DOCUMENT(&it)) {
    const uint8_t *data;
    uint32_t len;
    bson_t key;
    bson_iter_document(&it, &len, &data);
    if (bson_init_static(&key, data, len)) {
      *named = true;
      *is_id = bson_has_field(&key, "_id") && bson_count_keys(&key) == 1;
      *kind =
          aav_version_index_matches_keys(&key, names) || holds_owned_field(&key, names)
              ? DUPLICATE_VERSION
              : DUPLICATE_OTHER;
      return;
    }
  }
  if (bson_iter_init_find(&it, write_error, "errmsg") && BSON_ITER_HOLDS_UTF8(&it)) {
    const char *index = strstr(bson_iter_utf8(&it, NULL), " index: ");
    if (index) {
      index += strlen(" index: ");
      size_t len = strcspn(index, " ");
      *named = true;
      *is_id = len == 4 && strncmp(index, "_id_", 4) == 0;
      *kind = len == strlen(version_index) && strncmp(index, version_index, len) == 0
                  ? DUPLICATE_VERSION
                  : DUPLICATE_OTHER;
    }
  }
}

/* { key: value-in-doc (null when missing), ..., _id: { $ne: doc's _id } },
 * and'ed with the index's partial filter. False when a sparse index would
 * not hold the document at all. */
static bool holder_filter(const bson_t *spec, const bson_t *doc, bson_t *filter) {
  bson_iter_t it, key, field, id;
  bool sparse = bson_iter_init_find(&it, spec, "sparse") && bson_iter_as_bool(&it);
  bson_t keys = BSON_INITIALIZER;
  bson_init(filter);
  if (!bson_iter_init_find(&key, spec, "key") || !BSON_ITER_HOLDS_DOCUMENT(&key) ||
      !bson_iter_recurse(&key, &key)) {
    bson_destroy(&keys);
    return false;
  }
  while (bson_iter_next(&key)) {
    const char *name = bson_iter_key(&key);
    if (bson_iter_init(&field, doc) && bson_iter_find_descendant(&field, name, &field)) {
      BSON_APPEND_VALUE(&keys, name, bson_iter_value(&field));
    } else if (sparse) {
      bson_destroy(&keys);
      return false;
    } else {
      BSON_APPEND_NULL(&keys, name);
    }
  }
  if (bson_iter_init_find(&id, doc, "_id")) {
    bson_t ne;
    BSON_APPEND_DOCUMENT_BEGIN(&keys, "_id", &ne);
    BSON_APPEND_VALUE(&ne, "$ne", bson_iter_value(&id));
    bson_append_document_end(&keys, &ne);
  }
  if (bson_iter_init_find(&it, spec, "partialFilterExpression") &&
      BSON_ITER_HOLDS_DOCUMENT(&it)) {
    const uint8_t *data;
    uint32_t len;
    bson_t partial, and;
    bson_iter_document(&it, &len, &data);
    if (bson_init_static(&partial, data, len)) {
      BSON_APPEND_ARRAY_BEGIN(filter, "$and", &and);
      BSON_APPEND_DOCUMENT(&and, "0", &keys);
      BSON_APPEND_DOCUMENT(&and, "1", &partial);
      bson_append_array_end(filter, &and);
      bson_destroy(&keys);
      return true;
    }
  }
  bson_concat(filter, &keys);
  bson_destroy(&keys);
  return true;
}

/* Asks each unique index other than _id and (orderId, version) whether
 * another document holds the upload's values. Any doubt (a read error) says
 * no: the caller then retries. */
static bool other_index_holds(mongoc_collection_t *coll, const char *version_index,
                              const aav_field_names_t *names, const bson_t *doc,
                              char *index_name, size_t index_name_size) {
  bson_error_t ignored;
  mongoc_cursor_t *cursor = mongoc_collection_find_indexes_with_opts(coll, NULL);
  const bson_t *spec;
  bool holds = false;
  while (!holds && mongoc_cursor_next(cursor, &spec)) {
    bson_iter_t it, key;
    const char *name = bson_iter_init_find(&it, spec, "name") && BSON_ITER_HOLDS_UTF8(&it)
                           ? bson_iter_utf8(&it, NULL)
                           : "";
    if (!bson_iter_init_find(&it, spec, "unique") || !bson_iter_as_bool(&it) ||
        strcmp(name, "_id_") == 0 || strcmp(name, version_index) == 0)
      continue;
    if (bson_iter_init_find(&key, spec, "key") && BSON_ITER_HOLDS_DOCUMENT(&key)) {
      const uint8_t *data;
      uint32_t len;
      bson_t pattern;
      bson_iter_document(&key, &len, &data);
      if (bson_init_static(&pattern, data, len) &&
          (aav_version_index_matches_keys(&pattern, names) ||
           holds_owned_field(&pattern, names)))
        continue;
    }
    bson_t filter;
    if (holder_filter(spec, doc, &filter)) {
      bool failed;
      bson_t *holder = find_one(coll, &filter, &ignored, &failed);
      if (holder) {
        holds = true;
        bson_strncpy(index_name, name, index_name_size);
      }
      bson_destroy(holder);
    }
    bson_destroy(&filter);
  }
  mongoc_cursor_destroy(cursor);
  return holds;
}

duplicate_kind_t aav_duplicate_classify(mongoc_collection_t *coll,
                                        const char *version_index,
                                        const aav_field_names_t *names,
                                        const bson_t *write_error, const bson_t *doc,
                                        bson_t **same_upload, char *index_name,
                                        size_t index_name_size) {
  names = AAV_NAMES(names);
  duplicate_kind_t kind = DUPLICATE_VERSION;
  bool is_id, named, other_order;
  bson_error_t error;
  *same_upload = NULL;
  index_name[0] = '\0';
  named_index(write_error, version_index, names, &kind, &is_id, &named);
  if (named && !is_id && kind == DUPLICATE_OTHER) {
    /* Another index refused it; but if this very upload is stored already
     * (an earlier attempt or call), that is what the caller must hear. */
    if (!aav_duplicate_find_same_upload(coll, names, doc, same_upload, &other_order,
                                        &error))
      return DUPLICATE_UNSURE;
    if (*same_upload)
      return DUPLICATE_SAME_UPLOAD;
  }
  if (named && !is_id) {
    if (kind == DUPLICATE_OTHER) {
      bson_iter_t it;
      if (bson_iter_init_find(&it, write_error, "errmsg") && BSON_ITER_HOLDS_UTF8(&it)) {
        const char *index = strstr(bson_iter_utf8(&it, NULL), " index: ");
        if (index) {
          index += strlen(" index: ");
          size_t len = strcspn(index, " ");
          bson_strncpy(index_name, index,
                       len + 1 < index_name_size ? len + 1 : index_name_size);
        }
      }
    }
    return kind;
  }
  /* The _id is taken (or the server did not say what): is it this upload? */
  if (!aav_duplicate_find_same_upload(coll, names, doc, same_upload, &other_order,
                                      &error))
    return DUPLICATE_UNSURE;
  if (*same_upload)
    return DUPLICATE_SAME_UPLOAD;
  if (other_order) {
    bson_strncpy(index_name, "_id_", index_name_size);
    return DUPLICATE_OTHER;
  }
  if (is_id)
    return DUPLICATE_VERSION; /* the holder vanished meanwhile: try again */
  if (other_index_holds(coll, version_index, names, doc, index_name, index_name_size))
    return DUPLICATE_OTHER;
  return DUPLICATE_VERSION;
}
