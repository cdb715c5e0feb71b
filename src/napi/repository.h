/* NativeRepository: one client pool, one collection. Main thread unless
 * noted. lib/repository.js wraps it with the public API. */
#ifndef REPOSITORY_H
#define REPOSITORY_H

#include <mongoc/mongoc.h>
#include <node_api.h>
#include <stdatomic.h>

#include "addon_state.h"
#include "core/asset_doc.h"

typedef struct {
  mongoc_client_pool_t *pool; /* owned; destroyed by the close job, or by the
                                 finalizer if close() was never called */
  char *db_name;              /* owned */
  char *collection;           /* owned */
  bson_t *write_opts;         /* owned; writeConcern etc., may be NULL */
  aav_field_names_t names;    /* the app's field names (option "fields") */
  /* Written by the ensureIndex job, read by insert jobs queued after it
   * completed (lib/ awaits it), so the threadpool hand-off orders them. */
  char version_index[128];
  atomic_int tops_by_find;    /* see attempt_config_t */
  /* Set by the ensureIndex job, read by insert jobs queued after it
   * completed, like version_index: the server is FerretDB, whose missing
   * types are refused before sending (core/server_types.h). */
  bool ferretdb;
  unsigned busy;              /* jobs holding this repository: close() is refused */
  bool closing;
} repository_t;

/* The common head of every job that works on a repository. */
typedef struct {
  job_t job;              /* first: the scheduler hands this pointer back */
  addon_state_t *state;
  repository_t *repo;
  napi_ref repo_ref;      /* strong: the JS object (so repo) outlives the job */
  napi_deferred deferred; /* settled exactly once, by the job's completion */
} repo_job_t;

napi_value aav_repository_napi_define(napi_env env);

/* Readies a job on the repository `this` of the call and sets *promise.
 * True: the caller submits the job. False: it was refused (*promise is then
 * rejected if the repository is closed, or NULL with an exception pending)
 * and the caller frees it. */
bool aav_repo_job_start(napi_env env, napi_value this_obj, repo_job_t *rj, const char *name,
                    job_execute_fn execute, job_complete_fn complete, napi_value *promise);
/* Releases what repo_job_start took. The caller then frees its job. */
void aav_repo_job_release(napi_env env, repo_job_t *rj);

/* Settle the job's promise; failures are ignored because during environment
 * teardown they are expected and there is no one left to tell. */
void aav_repo_job_resolve(napi_env env, repo_job_t *rj, napi_value value);
void aav_repo_job_reject(napi_env env, repo_job_t *rj, napi_value error);
void aav_repo_job_reject_cancelled(napi_env env, repo_job_t *rj);

/* Worker thread: a client from the pool and the collection on it. */
mongoc_client_t *aav_repo_client_pop(repository_t *repo, mongoc_collection_t **coll);
void aav_repo_client_push(repository_t *repo, mongoc_client_t *client,
                      mongoc_collection_t *coll);

#endif
