/* insertBatch(bytes, ends, maxRetries, recoveryMs), a NativeRepository method:
 * the job, its promise, and the results handed to JavaScript. What each
 * attempt does and what comes next is runtime/batch.c's. Resolves with the
 * whole batch's results in three values, not an object per upload (the main
 * thread pays per object): { items, docs, errors }. `items` is a Float64Array
 * of BATCH_ITEM_FIELDS numbers per doc (layout in insert_batch.h, exported as
 * native.batchLayout); `docs` the stored documents end to end; `errors`,
 * present when an upload was not stored, is an array holding, at that
 * upload's index, its own AssetError (napi/errors.c builds each).
 *
 * The main thread only copies the caller's bytes; checking them and building
 * the documents happen on the threadpool, before the first attempt. */
#include "napi/insert_batch.h"

#include <stdlib.h>
#include <string.h>

#include "core/limits.h"
#include "napi/errors.h"
#include "napi/napi_util.h"
#include "napi/repository.h"
#include "runtime/batch.h"

typedef struct {
  repo_job_t rj; /* first: the scheduler hands this pointer back */
  aav_batch_t b;
} insert_batch_t;

static void batch_free(insert_batch_t *j) {
  aav_batch_destroy(&j->b);
  free(j);
}

/* Threadpool thread. */
static void batch_execute(job_t *job) { aav_batch_execute(&((insert_batch_t *)job)->b); }

static void batch_submit(insert_batch_t *j, uint64_t delay_ms) {
  if (delay_ms > 0)
    aav_scheduler_submit_after(&j->rj.state->scheduler, &j->rj.job, delay_ms);
  else
    aav_scheduler_submit(&j->rj.state->scheduler, &j->rj.job);
}

/* ---- results: one AssetError per upload that was not stored ----------------- */

/* props.idBytes: the BSON document { _id } (the AssetError constructor makes
 * it the error's _id). */
static void set_id(napi_env env, napi_value obj, const pending_asset_t *asset) {
  bson_iter_t it;
  napi_value value;
  if (!bson_iter_init_find(&it, asset->prepared, "_id"))
    return;
  bson_t id = BSON_INITIALIZER;
  BSON_APPEND_VALUE(&id, "_id", bson_iter_value(&it));
  if (napi_create_buffer_copy(env, id.len, bson_get_data(&id), NULL, &value) == napi_ok)
    napi_set_named_property(env, obj, "idBytes", value);
  bson_destroy(&id);
}

static napi_value exhausted_error(napi_env env, const aav_batch_t *b, size_t i) {
  const item_outcome_t *o = &b->outcomes[i];
  napi_value props;
  aav_error_class_t cls;
  char message[800], order[160];
  if (napi_create_object(env, &props) != napi_ok)
    return NULL;
  aav_asset_describe_order(b->assets[i].prepared, b->repo->names.order_id, order,
                           sizeof order);
  if (o->transient) {
    /* Report what happened: a transient refusal, not a duplicate key. */
    aav_errors_describe_bson(env, props, &o->error, o->labels, o->attempts);
    cls = AAV_ERROR_SERVER;
    snprintf(
        message, sizeof message,
        "could not store an upload to order %s after %d attempts: the server refused "
        "each as transient (%s)",
        order, o->attempts, o->error.message);
  } else {
    aav_napi_set_number(env, props, "code", 11000);
    aav_napi_set_string(env, props, "codeName", "DuplicateKey");
    aav_napi_set_number(env, props, "attempts", o->attempts);
    cls = AAV_ERROR_VERSION_CONFLICT;
    snprintf(message, sizeof message,
             "could not give an upload to order %s a version after %d attempts: each "
             "collided with a concurrent writer (%s)",
             order, o->attempts, o->error.message);
  }
  aav_napi_set_string(env, props, "reason",
                      aav_batch_reason_name(REASON_RETRIES_EXHAUSTED));
  aav_napi_set_bool(env, props, "retriable", true);
  return aav_error_new(env, cls, message, props);
}

static napi_value unknown_error(napi_env env, const aav_batch_t *b, size_t i) {
  const item_outcome_t *o = &b->outcomes[i];
  napi_value props, cause_props, cause;
  char message[900], order[160];
  aav_asset_describe_order(b->assets[i].prepared, b->repo->names.order_id, order,
                           sizeof order);
  if (napi_create_object(env, &props) != napi_ok ||
      napi_create_object(env, &cause_props) != napi_ok)
    return NULL;
  aav_error_class_t cause_cls =
      aav_errors_describe_bson(env, cause_props, &o->error, o->labels, o->attempts);
  cause = aav_error_new(env, cause_cls,
                        o->error.message[0] ? o->error.message : "unknown", cause_props);
  if (!cause)
    return NULL;
  const char *reason = aav_batch_reason_name(o->reason);
  napi_set_named_property(env, props, "cause", cause);
  aav_napi_set_string(env, props, "code", "ERR_ASSET_OUTCOME_UNKNOWN");
  aav_napi_set_string(env, props, "reason", reason ? reason : "UNKNOWN");
  aav_napi_set_bool(env, props, "retriable", false);
  aav_napi_set_number(env, props, "attempts", o->attempts);
  set_id(env, props, &b->assets[i]);
  snprintf(
      message, sizeof message,
      "the upload to order %s may or may not be stored (%s): call "
      "createWithAtomicVersion again with the same data and this error's _id to settle "
      "it; it then resolves with the stored document, or stores it once",
      order, o->error.message[0] ? o->error.message : "no answer");
  return aav_error_new(env, AAV_ERROR_OUTCOME_UNKNOWN, message, props);
}

static napi_value refusal(napi_env env, size_t index, const asset_problem_t *p) {
  char message[640];
  if (!p)
    return aav_error_new_coded(env, AAV_ERROR_ASSET, "ERR_ASSET_NO_MEMORY", NULL,
                               "out of memory");
  snprintf(message, sizeof message, "docs[%zu]: %s", index, p->message);
  return aav_error_new_coded(env, AAV_ERROR_VALIDATION, p->code, p->field, message);
}

static napi_value failure(napi_env env, const aav_batch_t *b, size_t i) {
  const item_outcome_t *o = &b->outcomes[i];
  if (o->reason == REASON_INVALID)
    return refusal(env, i, o->problem);
  if (o->state == ITEM_UNKNOWN)
    return unknown_error(env, b, i);
  if (o->reason == REASON_RETRIES_EXHAUSTED)
    return exhausted_error(env, b, i);
  return aav_errors_from_bson(env, &o->error, o->labels, o->attempts);
}

/* The numbers of upload i, at items[i * BATCH_ITEM_FIELDS]. */
static void item_numbers(const aav_batch_t *b, size_t i, size_t doc_end, double *out) {
  const item_outcome_t *o = &b->outcomes[i];
  const pending_asset_t *a = &b->assets[i];
  bool stored = o->state == ITEM_STORED;
  out[BATCH_ITEM_VERSION] = stored ? (double)a->version : 0;
  out[BATCH_ITEM_BUILT] = stored && !a->read_back;
  out[BATCH_ITEM_CREATED_MS] = stored && !a->read_back ? (double)a->created_ms : 0;
  out[BATCH_ITEM_ATTEMPTS] = o->attempts;
  out[BATCH_ITEM_RETRIES] = o->conflicts;
  out[BATCH_ITEM_DOC_END] = (double)doc_end;
}

static napi_value batch_results(napi_env env, const aav_batch_t *b) {
  size_t total = 0;
  bool any_failed = false;
  for (size_t i = 0; i < b->n; i++) {
    if (b->outcomes[i].state == ITEM_STORED)
      total += b->assets[i].stored->len;
    else
      any_failed = true;
  }
  napi_value results, items, buffer, docs, errors;
  double *numbers;
  uint8_t *bytes;
  AAV_NAPI_CALL(env, napi_create_object(env, &results));
  AAV_NAPI_CALL(env,
                napi_create_arraybuffer(env, b->n * BATCH_ITEM_FIELDS * sizeof(double),
                                        (void **)&numbers, &buffer));
  AAV_NAPI_CALL(env, napi_create_typedarray(env, napi_float64_array,
                                            b->n * BATCH_ITEM_FIELDS, buffer, 0, &items));
  AAV_NAPI_CALL(env, napi_create_buffer(env, total, (void **)&bytes, &docs));
  size_t at = 0;
  for (size_t i = 0; i < b->n; i++) {
    if (b->outcomes[i].state == ITEM_STORED) {
      const bson_t *doc = b->assets[i].stored;
      memcpy(bytes + at, bson_get_data(doc), doc->len);
      at += doc->len;
    }
    item_numbers(b, i, at, numbers + i * BATCH_ITEM_FIELDS);
  }
  AAV_NAPI_CALL(env, napi_set_named_property(env, results, "items", items));
  AAV_NAPI_CALL(env, napi_set_named_property(env, results, "docs", docs));
  if (any_failed) {
    AAV_NAPI_CALL(env, napi_create_array_with_length(env, b->n, &errors));
    for (size_t i = 0; i < b->n; i++) {
      if (b->outcomes[i].state == ITEM_STORED)
        continue;
      napi_value error = failure(env, b, i);
      if (!error)
        return NULL;
      AAV_NAPI_CALL(env, napi_set_element(env, errors, (uint32_t)i, error));
    }
    AAV_NAPI_CALL(env, napi_set_named_property(env, results, "errors", errors));
  }
  return results;
}

/* When the results cannot be handed over (out of memory, the environment
 * going away), what was stored is not known to the caller: unknown, not
 * failed. */
static napi_value results_lost(napi_env env) {
  napi_value pending, props;
  bool is_pending = false;
  if (napi_is_exception_pending(env, &is_pending) == napi_ok && is_pending)
    napi_get_and_clear_last_exception(env, &pending);
  if (napi_create_object(env, &props) != napi_ok)
    return NULL;
  aav_napi_set_string(env, props, "code", "ERR_ASSET_OUTCOME_UNKNOWN");
  aav_napi_set_string(env, props, "reason", "RESULTS_LOST");
  aav_napi_set_bool(env, props, "retriable", false);
  return aav_error_new(
      env, AAV_ERROR_OUTCOME_UNKNOWN,
      "the batch's results could not be handed to JavaScript: its uploads "
      "may or may not be stored",
      props);
}

static void batch_finish(napi_env env, insert_batch_t *j) {
  napi_value results = batch_results(env, &j->b);
  if (results)
    aav_repo_job_resolve(env, &j->rj, results);
  else
    aav_repo_job_reject(env, &j->rj, results_lost(env));
  aav_repo_job_release(env, &j->rj);
  batch_free(j);
}

/* Main thread: reads what the job found and decides what comes next. */
static void batch_complete(napi_env env, job_t *job, bool cancelled) {
  insert_batch_t *j = (insert_batch_t *)job;
  if (cancelled) {
    aav_repo_job_reject_cancelled(env, &j->rj);
    aav_repo_job_release(env, &j->rj);
    batch_free(j);
    return;
  }
  int64_t delay = aav_batch_next(&j->b);
  if (delay < 0)
    batch_finish(env, j);
  else
    batch_submit(j, (uint64_t)delay);
}

/* ---- starting a batch (main thread) -------------------------------------- */

/* Only what must be checked before the bytes are copied: that each document
 * is framed as BSON (its length prefix and terminator). Everything else is
 * checked on the threadpool (prepare_all). */
static bool framed_as_bson(const uint8_t *data, size_t len) {
  if (len < 5 || len > INT32_MAX || data[len - 1] != 0)
    return false;
  uint32_t declared = (uint32_t)data[0] | (uint32_t)data[1] << 8 |
                      (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24;
  return declared == len;
}

static bool throw_corrupt(napi_env env, size_t index) {
  char message[160];
  snprintf(message, sizeof message, "docs[%zu]: document is not well-formed BSON", index);
  aav_error_throw(env, AAV_ERROR_VALIDATION, "ERR_ASSET_CORRUPT", "", message);
  return false;
}

/* The documents arrive end to end in one Buffer, with a Float64Array saying
 * where each ends: two Node-API values per batch, not one per upload. Both
 * are copied first and only the copies are checked and used: the JavaScript
 * memory may be shared with another thread (a SharedArrayBuffer) and change
 * under us, or go once this call returns. */
static bool load_docs(napi_env env, napi_value bytes, napi_value ends, aav_batch_t *b) {
  const uint8_t *data;
  size_t len, n;
  void *ends_data = NULL;
  bool is_typed = false;
  napi_typedarray_type type = napi_int8_array;
  if (!aav_napi_uint8_view(env, bytes, &data, &len) ||
      napi_is_typedarray(env, ends, &is_typed) != napi_ok || !is_typed ||
      napi_get_typedarray_info(env, ends, &type, &n, &ends_data, NULL, NULL) != napi_ok ||
      type != napi_float64_array) {
    aav_error_throw(env, AAV_ERROR_VALIDATION, "ERR_INVALID_ARG_TYPE", "docs",
                    "insertBatch takes the documents' bytes (a Buffer) and where each "
                    "ends (a Float64Array)");
    return false;
  }
  if (n == 0 || n > AAV_LIMIT_MAX_BATCH) {
    char message[80];
    snprintf(message, sizeof message, "docs must hold 1 to %d documents",
             AAV_LIMIT_MAX_BATCH);
    aav_error_throw(env, AAV_ERROR_VALIDATION, "ERR_OUT_OF_RANGE", "docs", message);
    return false;
  }
  if (!aav_batch_init(b, n, len)) {
    aav_napi_throw_no_memory(env);
    return false;
  }
  if (len > 0) /* an empty Buffer's data may be NULL, which memcpy must not get */
    memcpy(b->raw, data, len);
  /* Each end is read once, into raw_end, and checked there. */
  const double *end_at = ends_data;
  size_t start = 0;
  for (size_t i = 0; i < n; i++) {
    double e = end_at[i];
    if (!(e > (double)start && e <= (double)len))
      return throw_corrupt(env, i);
    b->raw_end[i] = (size_t)e;
    if ((double)b->raw_end[i] != e ||
        !framed_as_bson(b->raw + start, b->raw_end[i] - start))
      return throw_corrupt(env, i);
    start = b->raw_end[i];
  }
  if (start != len) {
    aav_error_throw(env, AAV_ERROR_VALIDATION, "ERR_OUT_OF_RANGE", "docs",
                    "the last document must end where the bytes do");
    return false;
  }
  return true;
}

napi_value aav_insert_batch_napi_start(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4] = {NULL, NULL, NULL, NULL}, this_obj;
  if (!aav_errors_ready(env))
    return NULL;
  AAV_NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, &this_obj, NULL));
  for (size_t i = argc; i < 4; i++)
    AAV_NAPI_CALL(env, napi_get_undefined(env, &argv[i]));

  insert_batch_t *j = calloc(1, sizeof *j);
  if (!j) {
    aav_napi_throw_no_memory(env);
    return NULL;
  }
  int64_t max_retries, recovery_ms;
  if (!load_docs(env, argv[0], argv[1], &j->b) ||
      !aav_napi_int_arg(env, argv[2], "maxRetries", 0, AAV_LIMIT_MAX_RETRIES,
                        &max_retries) ||
      !aav_napi_int_arg(env, argv[3], "recoveryMs", 0, AAV_LIMIT_MAX_RECOVERY_MS,
                        &recovery_ms)) {
    batch_free(j);
    return NULL;
  }
  j->b.max_retries = (int)max_retries;
  j->b.recovery_ms = (uint64_t)recovery_ms;
  napi_value promise;
  if (aav_repo_job_start(env, this_obj, &j->rj, "atomicAssetVersion.insertBatch",
                         batch_execute, batch_complete, &promise)) {
    j->b.repo = j->rj.repo->store;
    j->b.rng = &j->rj.state->rng;
    batch_submit(j, 0);
  } else {
    batch_free(j); /* refused: rejected, or an exception is pending */
  }
  return promise;
}
