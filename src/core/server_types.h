/* Which BSON types the server can store. FerretDB v1 closes the connection
 * on a message holding a type it lacks, instead of refusing the one
 * document: every upload sent beside it would be left in doubt, waiting out
 * the recovery budget. Such uploads are refused before anything is sent.
 * Pure C on libbson, except the probe (a blocking driver call: threadpool
 * threads only). */
#ifndef SERVER_TYPES_H
#define SERVER_TYPES_H

#include <mongoc/mongoc.h>

#include "asset_doc.h"

/* Asks the server who it is (buildInfo). True and *ferretdb set when it
 * answered; false leaves *ferretdb as it was. */
bool aav_server_probe_ferretdb(mongoc_client_t *client, bool *ferretdb);

/* True when every value, at every depth, is of a type FerretDB v1 stores;
 * otherwise fills *problem naming the first field that is not. `doc` has
 * passed aav_asset_check_structure. */
bool aav_server_types_ferretdb_ok(const bson_t *doc, asset_problem_t *problem);

#endif
