#include "asset_doc.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *const AAV_ASSET_OWNED_FIELDS[AAV_ASSET_OWNED_COUNT] = {
    "version", "versionLabel", "createdAt", "updatedAt"};
const aav_field_names_t AAV_DEFAULT_FIELD_NAMES = {"orderId", "version", "versionLabel"};

static bool problem(asset_problem_t *p, const char *code, const char *field,
                    const char *fmt, const char *detail) {
  snprintf(p->code, sizeof p->code, "%s", code);
  snprintf(p->field, sizeof p->field, "%s", field);
  snprintf(p->message, sizeof p->message, fmt, field, detail);
  return false;
}

static void join_path(char *out, size_t size, const char *parent, const char *key) {
  if (parent[0] == '\0')
    snprintf(out, size, "%s", key);
  else
    snprintf(out, size, "%s.%s", parent, key);
}

/* Walks every key at every depth. Our own depth check comes before recursing so
 * that a hostile, deeply nested buffer cannot exhaust the C stack; bson_iter
 * reports a truncated or corrupt buffer through err_off. */
static bool check_structure(bson_iter_t *iter, const char *parent, int depth,
                            asset_problem_t *p) {
  char path[256];
  while (bson_iter_next(iter)) {
    uint32_t key_len = bson_iter_key_len(iter);
    const char *key = bson_iter_key(iter);
    join_path(path, sizeof path, parent, key);
    if (!bson_utf8_validate(key, key_len, false))
      return problem(p, "ERR_ASSET_KEY", path, "field \"%s\" %s",
                     "has a name that is not valid UTF-8");

    bson_type_t type = bson_iter_type(iter);
    if (type == BSON_TYPE_UTF8) {
      uint32_t len;
      const char *s = bson_iter_utf8(iter, &len);
      if (!bson_utf8_validate(s, len, true))
        return problem(p, "ERR_ASSET_VALUE", path, "field \"%s\" %s",
                       "holds a string that is not valid UTF-8");
    }
    if (type == BSON_TYPE_DOCUMENT || type == BSON_TYPE_ARRAY) {
      if (depth + 1 > AAV_LIMIT_MAX_DEPTH)
        return problem(p, "ERR_ASSET_TOO_DEEP", path, "field \"%s\" %s",
                       "nests deeper than MongoDB's limit of 100 levels");
      /* bson_init_static checks the length and the terminating zero, which
       * neither bson_iter_recurse nor bson_validate insist on. */
      const uint8_t *data;
      uint32_t len;
      bson_t nested;
      if (type == BSON_TYPE_DOCUMENT)
        bson_iter_document(iter, &len, &data);
      else
        bson_iter_array(iter, &len, &data);
      bson_iter_t child;
      if (!data || !bson_init_static(&nested, data, len) ||
          !bson_iter_recurse(iter, &child))
        return problem(p, "ERR_ASSET_CORRUPT", path, "field \"%s\" %s",
                       "is not a well-formed BSON document");
      if (!check_structure(&child, path, depth + 1, p))
        return false;
    }
  }
  if (iter->err_off != 0)
    return problem(p, "ERR_ASSET_CORRUPT", parent, "document at \"%s\" %s",
                   "is truncated or corrupt BSON");
  return true;
}

bool aav_asset_read_integer(const bson_iter_t *iter, int64_t *out) {
  switch (bson_iter_type(iter)) {
  case BSON_TYPE_INT32:
    *out = bson_iter_int32(iter);
    return true;
  case BSON_TYPE_INT64:
    *out = bson_iter_int64(iter);
    return true;
  case BSON_TYPE_DOUBLE: {
    /* JavaScript numbers past int32 arrive as doubles; accept exact integers
     * up to 2^53, where every integer is still representable. */
    double d = bson_iter_double(iter);
    if (!isfinite(d) || d != floor(d) || fabs(d) > 9007199254740992.0)
      return false;
    *out = (int64_t)d;
    return true;
  }
  default:
    return false;
  }
}

bool aav_asset_check_structure(const uint8_t *data, size_t len, asset_problem_t *p) {
  bson_t doc;
  if (data == NULL || len < 5 || !bson_init_static(&doc, data, len))
    return problem(p, "ERR_ASSET_CORRUPT", "", "document%s %s",
                   "is not well-formed BSON");
  if (len + AAV_LIMIT_STORED_OVERHEAD > AAV_LIMIT_MAX_BSON_SIZE)
    return problem(p, "ERR_ASSET_TOO_LARGE", "", "document%s %s",
                   "is over MongoDB's 16 MiB limit once versioned");
  bson_iter_t it;
  if (!bson_iter_init(&it, &doc))
    return problem(p, "ERR_ASSET_CORRUPT", "", "document%s %s",
                   "is not well-formed BSON");
  /* Our walk first: it bounds nesting before anything recurses. Then
   * libbson's own structural check, which also catches what an iterator
   * silently stops at (an early terminator followed by junk) and would
   * otherwise make later copies abort. */
  if (!check_structure(&it, "", 1, p))
    return false;
  bson_error_t error;
  if (!bson_validate_with_error(&doc, BSON_VALIDATE_NONE, &error)) {
    char detail[256];
    snprintf(detail, sizeof detail, "is not well-formed BSON: %.200s", error.message);
    return problem(p, "ERR_ASSET_CORRUPT", "", "document%s %s", detail);
  }
  return true;
}

bson_t *aav_asset_prepare(const uint8_t *data, size_t len, bool *id_generated,
                          asset_problem_t *p) {
  if (!aav_asset_check_structure(data, len, p))
    return NULL;
  bson_t src;
  bson_init_static(&src, data, len);
  bson_t *out = bson_sized_new(len + 16);
  bson_iter_t it;
  *id_generated = !bson_iter_init_find(&it, &src, "_id");
  if (*id_generated) {
    /* Made once per upload, before the first attempt, and kept across retries:
     * a duplicate on this _id can then only be an earlier attempt of ours. */
    bson_oid_t oid;
    bson_oid_init(&oid, NULL);
    BSON_APPEND_OID(out, "_id", &oid);
  } else {
    BSON_APPEND_VALUE(out, "_id", bson_iter_value(&it));
  }
  /* Copied field by field, never with a libbson helper that aborts on a
   * field it cannot append: these bytes came from outside. */
  bson_iter_init(&it, &src);
  while (bson_iter_next(&it)) {
    if (strcmp(bson_iter_key(&it), "_id") == 0)
      continue;
    if (!bson_append_iter(out, bson_iter_key(&it), (int)bson_iter_key_len(&it), &it)) {
      bson_destroy(out);
      *id_generated = false;
      problem(p, "ERR_ASSET_CORRUPT", bson_iter_key(&it), "field \"%s\" %s",
              "is not well-formed BSON");
      return NULL;
    }
  }
  return out;
}

void aav_asset_append_version(bson_t *doc, const char *key, int64_t version) {
  if (version <= INT32_MAX)
    bson_append_int32(doc, key, -1, (int32_t)version);
  else
    bson_append_int64(doc, key, -1, version);
}

/* A label name of "" stores no label: a caller's field by that name is kept. */
static bool is_owned_field(const char *key, const aav_field_names_t *names) {
  return strcmp(key, names->version) == 0 ||
         (names->version_label[0] != '\0' && strcmp(key, names->version_label) == 0) ||
         strcmp(key, "createdAt") == 0 || strcmp(key, "updatedAt") == 0;
}

bson_t *aav_asset_build_stored(const bson_t *prepared, int64_t version, int64_t now_ms,
                               const aav_field_names_t *names) {
  names = AAV_NAMES(names);
  bson_t *out = bson_sized_new(prepared->len + AAV_LIMIT_STORED_OVERHEAD);
  bson_iter_t it;
  if (bson_iter_init(&it, prepared)) {
    while (bson_iter_next(&it)) {
      if (!is_owned_field(bson_iter_key(&it), names))
        bson_append_iter(out, bson_iter_key(&it), -1, &it);
    }
  }
  char label[24];
  snprintf(label, sizeof label, "v%lld", (long long)version);
  aav_asset_append_version(out, names->version, version);
  if (names->version_label[0] != '\0')
    BSON_APPEND_UTF8(out, names->version_label, label);
  BSON_APPEND_DATE_TIME(out, "createdAt", now_ms);
  BSON_APPEND_DATE_TIME(out, "updatedAt", now_ms);
  return out;
}

bool aav_asset_same_field(const bson_t *a, const bson_t *b, const char *key) {
  bson_iter_t ia, ib;
  bool has_a = bson_iter_init_find(&ia, a, key), has_b = bson_iter_init_find(&ib, b, key);
  if (!has_a || !has_b)
    return has_a == has_b;
  bson_t va = BSON_INITIALIZER, vb = BSON_INITIALIZER;
  BSON_APPEND_VALUE(&va, "v", bson_iter_value(&ia));
  BSON_APPEND_VALUE(&vb, "v", bson_iter_value(&ib));
  bool equal = bson_equal(&va, &vb);
  bson_destroy(&va);
  bson_destroy(&vb);
  return equal;
}

void aav_asset_describe_order(const bson_t *doc, const char *order_field, char *out,
                              size_t size) {
  bson_iter_t it;
  if (!bson_iter_init_find(&it, doc, order_field)) {
    snprintf(out, size, "(none)");
  } else if (BSON_ITER_HOLDS_OID(&it)) {
    char hex[25];
    bson_oid_to_string(bson_iter_oid(&it), hex);
    snprintf(out, size, "ObjectId(\"%s\")", hex);
  } else if (BSON_ITER_HOLDS_UTF8(&it)) {
    snprintf(out, size, "\"%.120s\"", bson_iter_utf8(&it, NULL));
  } else {
    snprintf(out, size, "(not a string)");
  }
}
