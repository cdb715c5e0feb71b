/* How a batch of many orders reads each order's highest version, where the
 * server cannot do it in one read that stays cheap as the collection grows.
 * Blocking driver calls: threadpool threads only; no Node-API. */
#ifndef READ_TOPS_H
#define READ_TOPS_H

#include <mongoc/mongoc.h>

#include "attempt.h"

/* What attempt_config_t.tops_by_find holds. */
enum {
  /* One aggregate, $sort + $group/$first: on MongoDB an index probe per order. */
  TOPS_GROUPED = 0,
  /* One find of every version of the batch's orders, the maximum taken here:
   * where the server reads the whole collection for any filter anyway
   * (FerretDB v1 over SQLite), one scan beats one per order. */
  TOPS_ONE_FIND = 1,
  /* One find per order, each pushed down to the server's index (FerretDB v1
   * over PostgreSQL: an order's equality is, an $in of them is not). */
  TOPS_EACH_ORDER = 2
};

/* Once the grouped aggregate has been refused: which of the other two this
 * server wants, asked by explaining one order's find (FerretDB says whether
 * its filter reached the backend). `prepared` is one of the batch's items. */
int aav_read_tops_strategy(mongoc_collection_t *coll, const aav_field_names_t *names,
                           const bson_t *prepared);

/* tops[g] = the highest version of the order of items[starts[g]], each read
 * on its own. Fails on the first read that fails: nothing was written. */
bool aav_read_tops_each(mongoc_collection_t *coll, const aav_field_names_t *names,
                        pending_asset_t **items, const size_t *starts, size_t groups,
                        int64_t *tops, bson_error_t *error);

#endif
