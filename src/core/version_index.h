/* The unique (orderId, version) index that makes "highest + 1" safe.
 * Blocking driver calls: threadpool threads only. */
#ifndef VERSION_INDEX_H
#define VERSION_INDEX_H

#include <mongoc/mongoc.h>

#include "asset_doc.h"

/* The index's name under the default field names; under others, MongoDB's
 * default name for the keys, "<order>_1_<version>_1" (aav_version_index_name). */
#define VERSION_INDEX_NAME "orderId_1_version_1"

/* bson_error_t domain for "the index is missing or unsafe", beside the
 * driver's own domains, so callers can tell it from a server error. */
#define VERSION_INDEX_ERROR_DOMAIN 1000
#define VERSION_INDEX_ERROR_UNSAFE 1

/* The name the index is created under: "<order>_1_<version>_1". */
void aav_version_index_name(const aav_field_names_t *names, char *out, size_t size);

/* Reuses a unique index on { orderId, version } (the fields under `names`)
 * if one exists under any name, otherwise creates it under
 * aav_version_index_name's name, then confirms through listIndexes that
 * it is unique. Fails, never runs unprotected, when a non-unique or partial
 * index holds those keys, or when, behind a mongos, the collection is sharded
 * on a key that is not a ranged prefix of it. On success copies the index
 * name into name_out. */
bool aav_version_index_ensure(mongoc_client_t *client, const char *db_name,
                              mongoc_collection_t *coll, const aav_field_names_t *names,
                              char *name_out, size_t name_size, bson_error_t *error);

/* True when a shard key keeps the unique (orderId, version) index legal and
 * each order on one shard: { orderId: 1 } or { orderId: 1, version: 1 },
 * ranged (a hashed key cannot back a unique index). */
bool aav_version_index_shard_key_ok(const bson_t *shard_key,
                                    const aav_field_names_t *names);

/* True when an index key pattern is exactly { orderId, version }, in either
 * order and direction: each of those enforces pair uniqueness. */
bool aav_version_index_matches_keys(const bson_t *key, const aav_field_names_t *names);

#endif
