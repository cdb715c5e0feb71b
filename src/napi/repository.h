/* NativeRepository: the JS class over one store (runtime/store.h). Main
 * thread unless noted. lib/repository.js wraps it with the public API and
 * owns close: it refuses new calls and waits for its own before calling the
 * native close(), which therefore never refuses. */
#ifndef REPOSITORY_H
#define REPOSITORY_H

#include <node_api.h>

#include "runtime/addon_state.h"
#include "runtime/store.h"

typedef struct {
  repository_t *store; /* owned; freed by the finalizer (its pool by close) */
  unsigned jobs;       /* jobs holding the store: its pool is destroyed after the last */
  bool closed;         /* close() was called: new jobs are refused */
  bool pool_gone; /* the close job has run (or could not): close() resolves at once */
  napi_deferred *closers; /* owned: close() promises waiting for the pool to go */
  size_t n_closers;
} native_repo_t;

/* The common head of every job that works on a repository. */
typedef struct {
  job_t job; /* first: the scheduler hands this pointer back */
  addon_state_t *state;
  native_repo_t *repo;
  napi_ref repo_ref;      /* strong: the JS object (so repo) outlives the job */
  napi_deferred deferred; /* settled exactly once, by the job's completion */
} repo_job_t;

/* The class, with ensureIndex, readHighest and close; napi/binding.c adds
 * insertBatch (napi/insert_batch.c) to the same prototype. */
napi_value aav_repository_napi_define(napi_env env, const napi_property_descriptor *more,
                                      size_t n_more);

/* Readies a job on the repository `this` of the call and sets *promise.
 * True: the caller submits the job. False: it was refused (*promise is then
 * rejected if the repository is closed, or NULL with an exception pending)
 * and the caller frees it. */
bool aav_repo_job_start(napi_env env, napi_value this_obj, repo_job_t *rj,
                        const char *name, job_execute_fn execute,
                        job_complete_fn complete, napi_value *promise);
/* Releases what repo_job_start took; after the last job of a closed
 * repository, starts destroying its pool. The caller then frees its job. */
void aav_repo_job_release(napi_env env, repo_job_t *rj);

/* Settle the job's promise; failures are ignored because during environment
 * teardown they are expected and there is no one left to tell. */
void aav_repo_job_resolve(napi_env env, repo_job_t *rj, napi_value value);
void aav_repo_job_reject(napi_env env, repo_job_t *rj, napi_value error);
void aav_repo_job_reject_cancelled(napi_env env, repo_job_t *rj);

#endif
