/* Which values the server can store. FerretDB v1 closes the connection on a
 * message holding a type it lacks, instead of refusing the one document:
 * every upload sent beside it would be left in doubt, waiting out the
 * recovery budget; and after a value it refuses on validation its ordered
 * insert goes on past the refusal. Such uploads are refused before anything
 * is sent.
 * Pure C on libbson, except the probe (a blocking driver call: threadpool
 * threads only). */
#ifndef SERVER_TYPES_H
#define SERVER_TYPES_H

#include <mongoc/mongoc.h>

#include "asset_doc.h"

/* Asks the server who it is (buildInfo) and sets *ferretdb. False, with
 * *error, when no answer came: the guard below must not be skipped because
 * one reply was lost, so the caller fails and is tried again. A server that
 * answers with an error is not FerretDB. */
bool aav_server_probe_ferretdb(mongoc_client_t *client, bool *ferretdb,
                               bson_error_t *error);

/* True when every value, at every depth, is one FerretDB v1 stores;
 * otherwise fills *problem naming the first field that is not. `doc` has
 * passed aav_asset_check_structure. */
bool aav_server_types_ferretdb_ok(const bson_t *doc, asset_problem_t *problem);

#endif
