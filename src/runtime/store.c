#include "runtime/store.h"

#include <stdlib.h>

void aav_store_free(repository_t *repo) {
  if (!repo)
    return;
  if (repo->pool)
    mongoc_client_pool_destroy(repo->pool);
  bson_destroy(repo->write_opts);
  free(repo->db_name);
  free(repo->collection);
  free(repo);
}

mongoc_client_t *aav_store_client_pop(repository_t *repo, mongoc_collection_t **coll) {
  /* The pool holds at least as many clients as we run jobs: pop never waits. */
  mongoc_client_t *client = mongoc_client_pool_pop(repo->pool);
  *coll = mongoc_client_get_collection(client, repo->db_name, repo->collection);
  return client;
}

void aav_store_client_push(repository_t *repo, mongoc_client_t *client,
                           mongoc_collection_t *coll) {
  mongoc_collection_destroy(coll);
  mongoc_client_pool_push(repo->pool, client);
}
