/* Asset documents: checking that what reaches us is sound BSON, and building
 * what we store.
 * Pure C on libbson; no Node-API, safe on any thread. */
#ifndef ASSET_DOC_H
#define ASSET_DOC_H

#include <bson/bson.h>
#include <stdbool.h>

#include "limits.h"

/* The app's names for the fields the addon reads and writes (option
 * "fields" in lib/options.js, which checks them): the order, the version and
 * its label. A label name of "" stores no label. NULL wherever a names
 * pointer is taken means the defaults: orderId, version, versionLabel. */
/* A name and its terminator. */
#define AAV_FIELD_NAME_MAX (AAV_LIMIT_MAX_FIELD_NAME + 1)
typedef struct {
  char order_id[AAV_FIELD_NAME_MAX];
  char version[AAV_FIELD_NAME_MAX];
  char version_label[AAV_FIELD_NAME_MAX];
} aav_field_names_t;
extern const aav_field_names_t AAV_DEFAULT_FIELD_NAMES;
#define AAV_NAMES(names) ((names) ? (names) : &AAV_DEFAULT_FIELD_NAMES)

typedef struct {
  char code[48];     /* stable, e.g. "ERR_ASSET_ORDER_ID" */
  char field[256];   /* dotted path of the offending field, "" for the whole document */
  char message[512]; /* for people; always names the field */
} asset_problem_t;

/* Checks that raw BSON bytes of any origin (they may be garbage) are safe to
 * work on: well-formed at every depth, valid UTF-8, nesting and size within
 * MongoDB's limits. Returns true when they are; otherwise fills *problem.
 * What an asset must hold (orderId, fileName, key rules) is checked once,
 * in lib/asset_input.js. */
bool aav_asset_check_structure(const uint8_t *data, size_t len, asset_problem_t *problem);

/* Checks the structure, then returns a new document with `_id` first: the caller's, or a
 * fresh ObjectId (then *id_generated is true). The caller owns the result. */
bson_t *aav_asset_prepare(const uint8_t *data, size_t len, bool *id_generated,
                          asset_problem_t *problem);

/* The fields the stored document owns under the default names, in the order
 * they are appended: whatever the caller put there is replaced (exported as
 * native.ownedFields). Under other names, the version and label are the app's. */
#define AAV_ASSET_OWNED_COUNT 4
extern const char *const AAV_ASSET_OWNED_FIELDS[AAV_ASSET_OWNED_COUNT];

/* The document as stored: the prepared fields without the four we own, then
 * version, versionLabel "v<version>" (unless names store no label), createdAt
 * and updatedAt, the first two under `names`. The caller owns the result
 * (bson_destroy). */
bson_t *aav_asset_build_stored(const bson_t *prepared, int64_t version, int64_t now_ms,
                               const aav_field_names_t *names);

/* Appends the version number as MongoDB drivers write a JS number: int32 while
 * it fits, int64 beyond. */
void aav_asset_append_version(bson_t *doc, const char *key, int64_t version);

/* True when both documents hold the same value (type and bytes) under key,
 * or both lack it: how uploads are grouped by order. */
bool aav_asset_same_field(const bson_t *a, const bson_t *b, const char *key);

/* The document's order (its field `order_field`) for messages: "ord-1" or
 * ObjectId("…"). */
void aav_asset_describe_order(const bson_t *doc, const char *order_field, char *out,
                              size_t size);

/* Reads a numeric BSON value as an integer; false if it is not one. */
bool aav_asset_read_integer(const bson_iter_t *iter, int64_t *out);

#endif
