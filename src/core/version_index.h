/* The unique (orderId, version) index that makes "highest + 1" safe.
 * Blocking driver calls: threadpool threads only. */
#ifndef VERSION_INDEX_H
#define VERSION_INDEX_H

#include <mongoc/mongoc.h>

#define VERSION_INDEX_NAME "orderId_1_version_1"

/* bson_error_t domain for "the index is missing or unsafe", beside the
 * driver's own domains, so callers can tell it from a server error. */
#define VERSION_INDEX_ERROR_DOMAIN 1000
#define VERSION_INDEX_ERROR_UNSAFE 1

/* Reuses a unique index on { orderId, version } if one exists under any name,
 * otherwise creates VERSION_INDEX_NAME, then confirms through listIndexes that
 * it is unique. Fails, never runs unprotected, when a non-unique or partial
 * index holds those keys. On success copies the index name into name_out. */
bool version_index_ensure(mongoc_collection_t *coll, char *name_out,
                          size_t name_size, bson_error_t *error);

/* True when an index key pattern is exactly { orderId, version }, in either
 * order and direction: each of those enforces pair uniqueness. */
bool version_index_matches_keys(const bson_t *key);

#endif
