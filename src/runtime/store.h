/* A repository's driver resources: one client pool, one collection, the
 * app's field names. Created and freed on the main thread (napi/repository.c
 * owns the struct through the JS object); jobs on threadpool threads borrow
 * a client with aav_store_client_pop and give it back on every path. */
#ifndef STORE_H
#define STORE_H

#include <mongoc/mongoc.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "core/asset_doc.h"

typedef struct {
  mongoc_client_pool_t *pool; /* owned; destroyed by close (napi/repository.c),
                                 or by aav_store_free if close never ran */
  char *db_name;              /* owned */
  char *collection;           /* owned */
  bson_t *write_opts;         /* owned; writeConcern etc., may be NULL */
  aav_field_names_t names;    /* the app's field names (option "fields") */
  /* Written by the ensureIndex job, read by insert jobs queued after it
   * completed (lib/ awaits it), so the threadpool hand-off orders them. */
  char version_index[128];
  atomic_int tops_by_find; /* see attempt_config_t */
  /* Set by the ensureIndex job, read by insert jobs queued after it
   * completed, like version_index: the server is FerretDB, whose missing
   * types are refused before sending (core/server_types.h). */
  bool ferretdb;
} repository_t;

/* Main thread: frees everything the store owns, then the store. */
void aav_store_free(repository_t *repo);

/* Threadpool thread: a client from the pool and the collection on it. */
mongoc_client_t *aav_store_client_pop(repository_t *repo, mongoc_collection_t **coll);
void aav_store_client_push(repository_t *repo, mongoc_client_t *client,
                           mongoc_collection_t *coll);

#endif
