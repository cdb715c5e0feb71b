#include "napi/repository.h"

#include <stdlib.h>
#include <string.h>

#include "core/attempt.h"
#include "core/server_types.h"
#include "core/version_index.h"
#include "napi/errors.h"
#include "napi/napi_util.h"
#include "runtime/ca_bundle.h"

#define DEFAULT_SOCKET_TIMEOUT_MS 30000
#define NUMBER_TEXT_(n) #n
#define NUMBER_TEXT(n) NUMBER_TEXT_(n)

/* ---- lifetime ----------------------------------------------------------- */

static void native_repo_free(native_repo_t *repo) {
  aav_store_free(repo->store);
  free(repo->closers);
  free(repo);
}

/* Main thread, when the JS object is collected or the environment ends. No job
 * can be in flight (each holds a strong reference), so only a pool that
 * close() never destroyed remains; destroying it here blocks briefly. */
static void repository_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  native_repo_free(data);
}

/* One name of fieldNames ({ orderId, version, versionLabel }, checked by
 * lib/options.js): the default when absent; "" only for the label (none). */
static bool read_field_name(napi_env env, const bson_t *doc, const char *key, char *out,
                            bool may_be_empty) {
  bson_iter_t it;
  if (!doc || !bson_iter_init_find(&it, doc, key))
    return true;
  uint32_t len = 0;
  const char *name = BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, &len) : NULL;
  if (!name || len >= AAV_FIELD_NAME_MAX || (len == 0 && !may_be_empty) ||
      strlen(name) != len) {
    aav_error_throw(env, AAV_ERROR_VALIDATION, "ERR_INVALID_ARG_TYPE", "fieldNames",
                    "fieldNames: each name must be a string of 1 to " NUMBER_TEXT(
                        AAV_LIMIT_MAX_FIELD_NAME) " bytes");
    return false;
  }
  memcpy(out, name, len + 1);
  return true;
}

static bool read_field_names(napi_env env, const bson_t *doc, aav_field_names_t *names) {
  *names = AAV_DEFAULT_FIELD_NAMES;
  return read_field_name(env, doc, "orderId", names->order_id, false) &&
         read_field_name(env, doc, "version", names->version, false) &&
         read_field_name(env, doc, "versionLabel", names->version_label, true);
}

static napi_value repository_napi_new(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6], this_obj;
  if (!aav_errors_ready(env))
    return NULL;
  napi_value new_target = NULL;
  AAV_NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, &this_obj, NULL));
  /* Called without `new`, `this` is whatever the caller had (globalThis):
   * a pool wrapped there could never be closed. */
  AAV_NAPI_CALL(env, napi_get_new_target(env, info, &new_target));
  if (!new_target) {
    aav_error_throw(env, AAV_ERROR_VALIDATION, "ERR_INVALID_THIS", "this",
                    "NativeRepository must be called with new");
    return NULL;
  }
  for (size_t i = argc; i < 6; i++)
    AAV_NAPI_CALL(env, napi_get_undefined(env, &argv[i]));
  /* argv[5]: whether SSL_CERT_FILE or SSL_CERT_DIR is set, read by
   * lib/repository.js under Node's environment lock (a getenv here could race
   * with process.env writes on another thread). */
  bool env_names_ca = false;
  napi_valuetype ca_type;
  AAV_NAPI_CALL(env, napi_typeof(env, argv[5], &ca_type));
  if (ca_type == napi_boolean)
    AAV_NAPI_CALL(env, napi_get_value_bool(env, argv[5], &env_names_ca));

  char *uri_string = NULL, *db_name = NULL, *collection = NULL;
  bson_t *write_opts = NULL, *field_names = NULL;
  aav_field_names_t names;
  mongoc_uri_t *uri = NULL;
  repository_t *store = NULL;
  native_repo_t *repo = NULL;
  bson_error_t error;
  if (!aav_napi_string_arg(env, argv[0], "uri", false, &uri_string) ||
      !aav_napi_string_arg(env, argv[1], "dbName", true, &db_name) ||
      !aav_napi_string_arg(env, argv[2], "collection", false, &collection) ||
      !aav_napi_bson_arg(env, argv[3], "writeOptions", &write_opts) ||
      !aav_napi_bson_arg(env, argv[4], "fieldNames", &field_names))
    goto fail;
  bool names_ok = read_field_names(env, field_names, &names);
  bson_destroy(field_names);
  if (!names_ok)
    goto fail;

  uri = mongoc_uri_new_with_error(uri_string, &error);
  if (!uri) {
    char msg[600];
    snprintf(msg, sizeof msg, "option \"uri\" is not a valid MongoDB URI: %s",
             error.message);
    aav_error_throw(env, AAV_ERROR_VALIDATION, "ERR_ASSET_OPTION", "uri", msg);
    goto fail;
  }
  /* Never more connections than jobs we run at once; more would idle. */
  addon_state_t *state = aav_addon_state_get(env);
  if (state && !mongoc_uri_has_option(uri, MONGOC_URI_MAXPOOLSIZE))
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_MAXPOOLSIZE,
                                   (int32_t)state->scheduler.slots);
  /* libmongoc's own retry of a write (retryWrites) re-sends it after a
   * network error and then reports only the retry's failure, such as "no
   * suitable servers": an insert that may have committed would look as if it
   * was never sent. This addon settles lost replies itself, by _id, so the
   * driver's retry is off whatever the URI says. */
  mongoc_uri_set_option_as_bool(uri, MONGOC_URI_RETRYWRITES, false);
  /* A reply that never comes (a half-open connection) must not hold an
   * upload, and a threadpool slot, for libmongoc's default five minutes. */
  if (!mongoc_uri_has_option(uri, MONGOC_URI_SOCKETTIMEOUTMS))
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS,
                                   DEFAULT_SOCKET_TIMEOUT_MS);
  if (!mongoc_uri_get_option_as_utf8(uri, MONGOC_URI_APPNAME, NULL))
    mongoc_uri_set_appname(uri, "atomic-asset-version");
  aav_ca_bundle_apply(uri, env_names_ca);

  repo = calloc(1, sizeof *repo);
  store = calloc(1, sizeof *store);
  if (!repo || !store) {
    aav_napi_throw_no_memory(env);
    goto fail;
  }
  repo->store = store;
  store->pool = mongoc_client_pool_new(uri);
  if (!store->pool) {
    aav_error_throw(env, AAV_ERROR_VALIDATION, "ERR_ASSET_OPTION", "uri",
                    "the MongoDB URI names options this libmongoc build cannot honour");
    goto fail;
  }
  mongoc_client_pool_set_error_api(store->pool, MONGOC_ERROR_API_VERSION_2);
  if (!db_name) {
    const char *from_uri = mongoc_uri_get_database(uri);
    db_name = strdup(from_uri && *from_uri ? from_uri : "test");
  }
  store->db_name = db_name;
  store->collection = collection;
  store->write_opts = write_opts;
  store->names = names;
  aav_version_index_name(&store->names, store->version_index,
                         sizeof store->version_index);
  db_name = collection = NULL;
  write_opts = NULL;
  if (napi_wrap(env, this_obj, repo, repository_finalize, NULL, NULL) != napi_ok) {
    aav_napi_throw_failed(env, napi_generic_failure, "napi_wrap");
    goto fail;
  }
  mongoc_uri_destroy(uri);
  free(uri_string);
  return this_obj;

fail:
  if (repo)
    native_repo_free(repo); /* and its store */
  else
    aav_store_free(store);
  mongoc_uri_destroy(uri);
  bson_destroy(write_opts);
  free(uri_string);
  free(db_name);
  free(collection);
  return NULL;
}

static void close_start(napi_env env, native_repo_t *repo, napi_ref repo_ref);

/* ---- jobs --------------------------------------------------------------- */

void aav_repo_job_resolve(napi_env env, repo_job_t *rj, napi_value value) {
  if (rj->deferred && value)
    napi_resolve_deferred(env, rj->deferred, value);
  rj->deferred = NULL;
}

void aav_repo_job_reject(napi_env env, repo_job_t *rj, napi_value error) {
  napi_value thrown = NULL, undefined;
  bool pending = false;
  /* A pending exception would make the rejection itself fail and leave the
   * promise unsettled: it is taken, and is the reason if there is no other. */
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending)
    napi_get_and_clear_last_exception(env, &thrown);
  if (!error)
    error = thrown;
  if (!error && napi_get_undefined(env, &undefined) == napi_ok)
    error = undefined;
  if (rj->deferred && error)
    napi_reject_deferred(env, rj->deferred, error);
  rj->deferred = NULL;
}

void aav_repo_job_reject_cancelled(napi_env env, repo_job_t *rj) {
  napi_value props = NULL;
  if (napi_create_object(env, &props) == napi_ok)
    aav_napi_set_string(env, props, "code", "ERR_ASSET_CANCELLED");
  aav_repo_job_reject(
      env, rj,
      aav_error_new(env, AAV_ERROR_REPOSITORY_CLOSED,
                    "the operation was cancelled: its environment is shutting down",
                    props));
}

bool aav_repo_job_start(napi_env env, napi_value this_obj, repo_job_t *rj,
                        const char *name, job_execute_fn execute,
                        job_complete_fn complete, napi_value *promise) {
  void *data = NULL;
  *promise = NULL;
  rj->state = aav_addon_state_get(env);
  if (!aav_errors_ready(env))
    return false;
  if (napi_unwrap(env, this_obj, &data) != napi_ok || !data || !rj->state) {
    aav_error_throw(env, AAV_ERROR_VALIDATION, "ERR_INVALID_THIS", "this",
                    "not a NativeRepository");
    return false;
  }
  rj->repo = data;
  if (napi_create_promise(env, &rj->deferred, promise) != napi_ok) {
    aav_napi_throw_failed(env, napi_generic_failure, "napi_create_promise");
    rj->repo = NULL;
    return false;
  }
  if (rj->repo->closed) {
    aav_repo_job_reject(env, rj,
                        aav_error_new_coded(env, AAV_ERROR_REPOSITORY_CLOSED,
                                            "ERR_ASSET_CLOSED", NULL,
                                            "the repository is closed"));
    rj->repo = NULL;
    return false;
  }
  if (napi_create_reference(env, this_obj, 1, &rj->repo_ref) != napi_ok) {
    aav_repo_job_reject(env, rj, NULL);
    rj->repo = NULL;
    return false;
  }
  rj->repo->jobs++;
  aav_addon_state_job_started(rj->state);
  rj->job.name = name;
  rj->job.execute = execute;
  rj->job.complete = complete;
  return true;
}

void aav_repo_job_release(napi_env env, repo_job_t *rj) {
  native_repo_t *repo = rj->repo;
  if (!repo)
    return;
  napi_ref ref = rj->repo_ref;
  rj->repo_ref = NULL;
  rj->repo = NULL;
  if (--repo->jobs == 0 && repo->closed && !repo->pool_gone)
    close_start(env, repo, ref); /* takes over the reference */
  else if (ref)
    napi_delete_reference(env, ref);
  aav_addon_state_job_finished(rj->state);
}

/* ensureIndex(): resolves with the name of the unique (orderId, version) index. */
typedef struct {
  repo_job_t rj;
  char name[128];
  bson_error_t error;
  bool ok;
  bool ferretdb;
} ensure_index_job_t;

/* Threadpool thread. */
static void ensure_index_execute(job_t *job) {
  ensure_index_job_t *j = (ensure_index_job_t *)job;
  mongoc_collection_t *coll;
  mongoc_client_t *client = aav_store_client_pop(j->rj.repo->store, &coll);
  j->ok = aav_version_index_ensure(client, j->rj.repo->store->db_name, coll,
                                   &j->rj.repo->store->names, j->name, sizeof j->name,
                                   &j->error);
  if (j->ok)
    j->ok = aav_server_probe_ferretdb(client, &j->ferretdb, &j->error);
  aav_store_client_push(j->rj.repo->store, client, coll);
}

/* Main thread. */
static void ensure_index_complete(napi_env env, job_t *job, bool cancelled) {
  ensure_index_job_t *j = (ensure_index_job_t *)job;
  napi_value name;
  if (cancelled) {
    aav_repo_job_reject_cancelled(env, &j->rj);
  } else if (j->ok &&
             napi_create_string_utf8(env, j->name, NAPI_AUTO_LENGTH, &name) == napi_ok) {
    bson_strncpy(j->rj.repo->store->version_index, j->name,
                 sizeof j->rj.repo->store->version_index);
    j->rj.repo->store->ferretdb = j->ferretdb;
    aav_repo_job_resolve(env, &j->rj, name);
  } else {
    aav_repo_job_reject(env, &j->rj, aav_errors_from_bson(env, &j->error, "", 1));
  }
  aav_repo_job_release(env, &j->rj);
  free(j);
}

static napi_value repository_napi_ensure_index(napi_env env, napi_callback_info info) {
  if (!aav_errors_ready(env))
    return NULL;
  napi_value this_obj;
  AAV_NAPI_CALL(env, napi_get_cb_info(env, info, NULL, NULL, &this_obj, NULL));
  ensure_index_job_t *j = calloc(1, sizeof *j);
  if (!j) {
    aav_napi_throw_no_memory(env);
    return NULL;
  }
  napi_value promise;
  if (aav_repo_job_start(env, this_obj, &j->rj, "atomicAssetVersion.ensureIndex",
                         ensure_index_execute, ensure_index_complete, &promise))
    aav_scheduler_submit(&j->rj.state->scheduler, &j->rj.job);
  else
    free(j); /* refused: rejected, or an exception is pending */
  return promise;
}

/* readHighest(filterBytes): the highest committed version of { <order field> }. */
typedef struct {
  repo_job_t rj;
  bson_t *filter;
  int64_t highest;
  bson_error_t error;
  bool ok;
} read_highest_job_t;

/* Threadpool thread. */
static void read_highest_execute(job_t *job) {
  read_highest_job_t *j = (read_highest_job_t *)job;
  mongoc_collection_t *coll;
  mongoc_client_t *client = aav_store_client_pop(j->rj.repo->store, &coll);
  j->ok = aav_attempt_read_highest(coll, j->filter, &j->rj.repo->store->names,
                                   &j->highest, &j->error);
  aav_store_client_push(j->rj.repo->store, client, coll);
}

/* Main thread. */
static void read_highest_complete(napi_env env, job_t *job, bool cancelled) {
  read_highest_job_t *j = (read_highest_job_t *)job;
  napi_value value;
  if (cancelled)
    aav_repo_job_reject_cancelled(env, &j->rj);
  else if (j->ok && napi_create_int64(env, j->highest, &value) == napi_ok)
    aav_repo_job_resolve(env, &j->rj, value);
  else
    aav_repo_job_reject(env, &j->rj, aav_errors_from_bson(env, &j->error, "", 1));
  aav_repo_job_release(env, &j->rj);
  bson_destroy(j->filter);
  free(j);
}

static napi_value repository_napi_read_highest(napi_env env, napi_callback_info info) {
  if (!aav_errors_ready(env))
    return NULL;
  size_t argc = 1;
  napi_value argv[1] = {NULL}, this_obj;
  AAV_NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, &this_obj, NULL));
  bson_t *filter = NULL;
  if (!aav_napi_bson_arg(env, argv[0], "filter", &filter))
    return NULL;
  /* lib/ builds it: { <order field>: value }, under the repository's names. */
  if (!filter || bson_count_keys(filter) != 1) {
    bson_destroy(filter);
    aav_error_throw(env, AAV_ERROR_VALIDATION, "ERR_INVALID_ARG_TYPE", "filter",
                    "filter must hold the order only");
    return NULL;
  }
  read_highest_job_t *j = calloc(1, sizeof *j);
  if (!j) {
    bson_destroy(filter);
    aav_napi_throw_no_memory(env);
    return NULL;
  }
  j->filter = filter;
  napi_value promise;
  if (aav_repo_job_start(env, this_obj, &j->rj, "atomicAssetVersion.readHighest",
                         read_highest_execute, read_highest_complete, &promise)) {
    aav_scheduler_submit(&j->rj.state->scheduler, &j->rj.job);
  } else {
    bson_destroy(filter);
    free(j);
  }
  return promise;
}

/* close(): destroys the pool on the threadpool (it ends server sessions over
 * the network). Waiting for the caller's own work is lib/repository.js's job;
 * here close() never refuses: it is idempotent, refuses jobs started after
 * it, and if jobs still hold the repository the pool goes after the last
 * of them (aav_repo_job_release). Every close() promise resolves once the
 * pool is gone. */
typedef struct {
  repo_job_t rj;              /* first; holds the JS object until destroyed */
  mongoc_client_pool_t *pool; /* taken from the store, destroyed by execute */
} close_job_t;

/* Main thread: the pool is gone (or left to the finalizer). */
static void closers_resolve(napi_env env, native_repo_t *repo) {
  napi_value undefined;
  bool have_undefined = napi_get_undefined(env, &undefined) == napi_ok;
  repo->pool_gone = true;
  for (size_t i = 0; i < repo->n_closers; i++)
    if (have_undefined)
      napi_resolve_deferred(env, repo->closers[i], undefined);
  free(repo->closers);
  repo->closers = NULL;
  repo->n_closers = 0;
}

/* Threadpool thread: destroying a pool ends server sessions over the network. */
static void close_execute(job_t *job) {
  close_job_t *j = (close_job_t *)job;
  mongoc_client_pool_destroy(j->pool);
  j->pool = NULL;
}

/* Main thread. */
static void close_complete(napi_env env, job_t *job, bool cancelled) {
  close_job_t *j = (close_job_t *)job;
  if (cancelled && j->pool) {
    /* Never ran: give the pool back so the finalizer destroys it. */
    j->rj.repo->store->pool = j->pool;
  }
  closers_resolve(env, j->rj.repo);
  napi_delete_reference(env, j->rj.repo_ref);
  aav_addon_state_job_finished(j->rj.state);
  free(j);
}

/* Main thread, once no job holds the repository. Takes over `repo_ref` (a
 * strong reference to the JS object). */
static void close_start(napi_env env, native_repo_t *repo, napi_ref repo_ref) {
  addon_state_t *state = aav_addon_state_get(env);
  close_job_t *j = calloc(1, sizeof *j);
  if (!j || !state) {
    /* Cannot hand it to a thread: let the finalizer destroy the pool. */
    closers_resolve(env, repo);
    napi_delete_reference(env, repo_ref);
    free(j);
    return;
  }
  j->rj.state = state;
  j->rj.repo = repo;
  j->rj.repo_ref = repo_ref;
  j->pool = repo->store->pool;
  repo->store->pool = NULL;
  j->rj.job.name = "atomicAssetVersion.close";
  j->rj.job.execute = close_execute;
  j->rj.job.complete = close_complete;
  aav_addon_state_job_started(state);
  aav_scheduler_submit(&state->scheduler, &j->rj.job);
}

static napi_value repository_napi_close(napi_env env, napi_callback_info info) {
  napi_value this_obj, promise, undefined;
  void *data = NULL;
  napi_deferred deferred;
  if (!aav_errors_ready(env))
    return NULL;
  AAV_NAPI_CALL(env, napi_get_cb_info(env, info, NULL, NULL, &this_obj, NULL));
  if (napi_unwrap(env, this_obj, &data) != napi_ok || !data) {
    aav_error_throw(env, AAV_ERROR_VALIDATION, "ERR_INVALID_THIS", "this",
                    "not a NativeRepository");
    return NULL;
  }
  native_repo_t *repo = data;
  AAV_NAPI_CALL(env, napi_create_promise(env, &deferred, &promise));
  if (repo->pool_gone) { /* closed already: closing again is harmless */
    AAV_NAPI_CALL(env, napi_get_undefined(env, &undefined));
    AAV_NAPI_CALL(env, napi_resolve_deferred(env, deferred, undefined));
    return promise;
  }
  napi_deferred *closers =
      realloc(repo->closers, (repo->n_closers + 1) * sizeof *closers);
  if (!closers) {
    napi_value error = aav_error_new_coded(env, AAV_ERROR_ASSET, "ERR_ASSET_NO_MEMORY",
                                           NULL, "out of memory");
    if (error)
      napi_reject_deferred(env, deferred, error);
    return promise;
  }
  repo->closers = closers;
  repo->closers[repo->n_closers++] = deferred;
  if (repo->closed)
    return promise; /* the first close() destroys the pool and resolves this too */
  repo->closed = true;
  if (repo->jobs == 0) {
    napi_ref ref;
    if (napi_create_reference(env, this_obj, 1, &ref) != napi_ok) {
      closers_resolve(env, repo); /* the finalizer destroys the pool */
      return promise;
    }
    close_start(env, repo, ref);
  }
  return promise;
}
napi_value aav_repository_napi_define(napi_env env, const napi_property_descriptor *more,
                                      size_t n_more) {
  napi_property_descriptor methods[8] = {
      {"ensureIndex", NULL, repository_napi_ensure_index, NULL, NULL, NULL, napi_default,
       NULL},
      {"readHighest", NULL, repository_napi_read_highest, NULL, NULL, NULL, napi_default,
       NULL},
      {"close", NULL, repository_napi_close, NULL, NULL, NULL, napi_default, NULL},
  };
  size_t n = 3;
  for (size_t i = 0; i < n_more && n < sizeof methods / sizeof methods[0]; i++)
    methods[n++] = more[i];
  napi_value ctor;
  AAV_NAPI_CALL(env, napi_define_class(env, "NativeRepository", NAPI_AUTO_LENGTH,
                                       repository_napi_new, NULL, n, methods, &ctor));
  return ctor;
}
