/* insertBatch(bytes, ends, maxRetries, recoveryMs): uploads of one or many orders
 * (lib/ puts each order's uploads together, in call order), inserted with
 * consecutive versions per order, retried after conflicts on a timer. Resolves
 * with the whole batch's results in three values, not an object per upload
 * (the main thread pays per object): { items, docs, errors }. `items` is a
 * Float64Array of BATCH_ITEM_FIELDS numbers per doc (layout in
 * insert_batch.h, exported as native.batchLayout); `docs` the stored
 * documents end to end; `errors`, present when an upload was not stored, is
 * an array holding, at that upload's index, error data ({ kind, message, code,
 * … }) that lib/errors.js turns into an error object per upload.
 *
 * The main thread only copies the caller's bytes; checking them and building
 * the documents happen on the threadpool, before the first attempt.
 *
 * One batch lives through several jobs: each attempt runs on the threadpool,
 * its completion (main thread) decides whether to finish, go on at once, or
 * park on the scheduler's timer for a backoff; no thread ever sleeps.
 *
 * An upload that an attempt may have stored (the reply was lost) is "in
 * doubt" from then on. Before the batch inserts again it looks the uploads
 * up by _id (recovery, with its own time budget, separate from the conflict
 * retries). An upload once in doubt ends stored or as OutcomeUnknownError,
 * never as a plain failure: a lost insert may still land later. */
#include <stdlib.h>
#include <string.h>

#include "core/asset_doc.h"
#include "core/attempt.h"
#include "core/backoff.h"
#include "core/server_types.h"
#include "errors.h"
#include "insert_batch.h"
#include "napi_util.h"
#include "repository.h"

#define BACKOFF_FIRST_MS 5.0
#define BACKOFF_CAP_MS 200.0
#define RECOVERY_FIRST_MS 50.0
#define RECOVERY_CAP_MS 1000.0

typedef enum {
  ITEM_PENDING,
  ITEM_STORED,
  ITEM_FAILED,  /* certainly not stored */
  ITEM_UNKNOWN, /* may or may not be stored */
  ITEM_REFUSED, /* for settle(): failed, and shown not stored even if in doubt */
} item_state_t;

typedef struct {
  item_state_t state;
  int attempts;       /* attempts it took part in */
  int conflicts;      /* of those, lost to a concurrent writer (or refused as transient) */
  bool transient;     /* the last of those was a transient refusal, not E11000 */
  bool in_doubt;      /* an attempt may have stored it, or (a caller's _id) an
                         earlier call did */
  bool refused;       /* refused by a failure that names no upload, alone or with
                         the command: once a look by _id shows it is not
                         stored, it failed */
  const char *reason; /* why it failed or is unknown, a static string, or NULL */
  asset_problem_t *problem; /* owned: its bytes were refused before any write */
  bson_error_t error; /* ITEM_FAILED, ITEM_UNKNOWN */
  char labels[160];
} item_outcome_t;

typedef struct {
  repo_job_t rj;            /* first */
  uint8_t *raw;             /* owned until prepared: the caller's bytes, end to end */
  size_t *raw_end;          /* owned until prepared: doc i ends at raw[raw_end[i]] */
  pending_asset_t *assets;  /* owned, n entries, with their bson_t documents */
  item_outcome_t *outcomes; /* owned, n entries */
  size_t n;
  /* Written by execute, read by complete: the items an attempt worked on. */
  pending_asset_t **run;    /* owned array of n pointers into assets */
  size_t *run_index;        /* owned, n entries: run[i] is assets[run_index[i]] */
  size_t run_n;
  bool attempted;           /* execute ran attempt_run */
  uint64_t attempt_ms;      /* how long that took, read and insert */
  /* Recovery. */
  bool in_doubt;            /* pending items may be stored: look them up first */
  size_t run_limit;         /* pending uploads the next attempt may send (0: all):
                               halved after a refusal that names no upload, so
                               the one refused for its content ends alone */
  uint64_t recovery_ms;     /* budget from the first unknown outcome */
  uint64_t recovery_deadline; /* uv_hrtime() in ms; 0 until the first unknown */
  int recoveries;           /* failed recovery reads so far, for the backoff */
  bool last_look;           /* the budget is spent: recover once more, insert no more */
  bool recovery_ok;         /* by execute */
  bool recovery_unconfirmed; /* by execute: found, write concern not confirmed */
  bson_error_t recovery_error;
  int max_retries;          /* conflicts each upload may lose */
  attempt_result_t result;  /* written by execute, read by complete */
} insert_batch_t;

static void free_raw(insert_batch_t *b) {
  free(b->raw);
  free(b->raw_end);
  b->raw = NULL;
  b->raw_end = NULL;
}

static void batch_free(insert_batch_t *b) {
  for (size_t i = 0; b->assets && i < b->n; i++) {
    bson_destroy(b->assets[i].prepared);
    bson_destroy(b->assets[i].stored);
  }
  for (size_t i = 0; b->outcomes && i < b->n; i++)
    free(b->outcomes[i].problem);
  free_raw(b);
  free(b->assets);
  free(b->outcomes);
  free(b->run);
  free(b->run_index);
  free(b);
}

/* Gathers into run[] the unsettled uploads: all of them for a look by _id,
 * or those the next attempt sends (up to run_limit, none refused). */
static void collect_pending(insert_batch_t *b, bool to_send) {
  size_t limit = to_send && b->run_limit > 0 ? b->run_limit : b->n;
  b->run_n = 0;
  for (size_t i = 0; i < b->n && b->run_n < limit; i++) {
    if (b->outcomes[i].state == ITEM_PENDING && !b->assets[i].found &&
        !(to_send && b->outcomes[i].refused)) {
      b->run[b->run_n] = &b->assets[i];
      b->run_index[b->run_n++] = i;
    }
  }
}

/* Threadpool thread, first job: checks each upload's bytes (lib/ validated
 * them; this guards anything else that reaches the native API) and builds its
 * document with _id first. An upload refused here is failed, never sent; the
 * others go on. */
static void prepare_all(insert_batch_t *b) {
  size_t start = 0;
  for (size_t i = 0; i < b->n; i++) {
    asset_problem_t problem;
    bool id_generated = false;
    b->assets[i].prepared = aav_asset_prepare(b->raw + start, b->raw_end[i] - start,
                                              &id_generated, &problem);
    start = b->raw_end[i];
    item_outcome_t *o = &b->outcomes[i];
    if (b->assets[i].prepared && b->rj.repo->ferretdb &&
        !aav_server_types_ferretdb_ok(b->assets[i].prepared, &problem)) {
      bson_destroy(b->assets[i].prepared);
      b->assets[i].prepared = NULL;
    }
    if (b->assets[i].prepared) {
      o->in_doubt = !id_generated; /* the caller's _id: an earlier call may have stored it */
      continue;
    }
    o->state = ITEM_FAILED;
    o->reason = "INVALID";
    o->problem = malloc(sizeof *o->problem);
    if (o->problem)
      *o->problem = problem;
  }
  free_raw(b);
}

/* Threadpool thread: touches only the batch and the repository's pool. */
static void batch_execute(job_t *job) {
  insert_batch_t *b = (insert_batch_t *)job;
  repository_t *repo = b->rj.repo;
  if (b->raw)
    prepare_all(b);
  attempt_config_t config = {repo->version_index, repo->write_opts, &repo->tops_by_find,
                             &repo->names};
  b->attempted = false;
  b->recovery_ok = true;
  b->recovery_unconfirmed = false;
  mongoc_collection_t *coll;
  mongoc_client_t *client = aav_repo_client_pop(repo, &coll);
  if (b->in_doubt) {
    collect_pending(b, false);
    b->recovery_ok = aav_attempt_recover(coll, &config, b->run, b->run_n,
                                     &b->recovery_unconfirmed, &b->recovery_error);
  }
  collect_pending(b, true);
  if (b->recovery_ok && b->run_n > 0 && !b->last_look) {
    uint64_t started = uv_hrtime();
    aav_attempt_run(coll, &config, b->run, b->run_n, &b->result);
    b->attempt_ms = (uv_hrtime() - started) / 1000000;
    b->attempted = true;
  }
  aav_repo_client_push(repo, client, coll);
}

static void batch_submit(insert_batch_t *b, uint64_t delay_ms) {
  if (delay_ms > 0)
    aav_scheduler_submit_after(&b->rj.state->scheduler, &b->rj.job, delay_ms);
  else
    aav_scheduler_submit(&b->rj.state->scheduler, &b->rj.job);
}

static uint64_t wait_ms(insert_batch_t *b, int round, double first, double cap) {
  return aav_backoff_ms(round, first, cap, aav_addon_state_random(b->rj.state));
}

static uint64_t now_ms(void) { return uv_hrtime() / 1000000; }

/* Settles one item. A failure of an item that an attempt may have stored is
 * reported as unknown, never as "not stored". */
static void settle(insert_batch_t *b, size_t i, item_state_t state, const bson_error_t *error,
                   const char *labels, const char *reason) {
  item_outcome_t *o = &b->outcomes[i];
  if (state == ITEM_FAILED && o->in_doubt)
    state = ITEM_UNKNOWN;
  if (state == ITEM_REFUSED)
    state = ITEM_FAILED; /* looked up by _id and not stored: certain */
  o->state = state;
  o->reason = reason;
  if (error)
    o->error = *error;
  if (labels)
    bson_strncpy(o->labels, labels, sizeof o->labels);
}

static void settle_pending(insert_batch_t *b, item_state_t state, const bson_error_t *error,
                           const char *labels, const char *reason) {
  for (size_t i = 0; i < b->n; i++)
    if (b->outcomes[i].state == ITEM_PENDING)
      settle(b, i, state, error, labels, reason);
}

static bool all_settled(const insert_batch_t *b) {
  for (size_t i = 0; i < b->n; i++)
    if (b->outcomes[i].state == ITEM_PENDING)
      return false;
  return true;
}

/* ---- results: data for lib/errors.js --------------------------------------- */

static void set_id(napi_env env, napi_value obj, const pending_asset_t *asset) {
  bson_iter_t it;
  napi_value value;
  if (!bson_iter_init_find(&it, asset->prepared, "_id"))
    return;
  bson_t id = BSON_INITIALIZER;
  BSON_APPEND_VALUE(&id, "_id", bson_iter_value(&it));
  if (napi_create_buffer_copy(env, id.len, bson_get_data(&id), NULL, &value) == napi_ok)
    napi_set_named_property(env, obj, "id", value);
  bson_destroy(&id);
}

static napi_value exhausted_error(napi_env env, insert_batch_t *b, size_t i) {
  item_outcome_t *o = &b->outcomes[i];
  napi_value data;
  char message[800], order[160];
  if (napi_create_object(env, &data) != napi_ok)
    return NULL;
  aav_asset_describe_order(b->assets[i].prepared, b->rj.repo->names.order_id, order, sizeof order);
  if (o->transient) {
    /* Report what happened: a transient refusal, not a duplicate key. */
    aav_errors_describe_bson(env, data, &o->error, o->labels, o->attempts);
    aav_napi_set_string(env, data, "kind", ERROR_KIND_SERVER);
    snprintf(message, sizeof message,
             "could not store an upload to order %s after %d attempts: the server refused "
             "each as transient (%s)",
             order, o->attempts, o->error.message);
  } else {
    aav_napi_set_number(env, data, "code", 11000);
    aav_napi_set_string(env, data, "codeName", "DuplicateKey");
    aav_napi_set_string(env, data, "kind", ERROR_KIND_CONFLICT);
    aav_napi_set_number(env, data, "attempts", o->attempts);
    snprintf(message, sizeof message,
             "could not give an upload to order %s a version after %d attempts: each "
             "collided with a concurrent writer (%s)",
             order, o->attempts, o->error.message);
  }
  aav_napi_set_string(env, data, "reason", "RETRIES_EXHAUSTED");
  aav_napi_set_bool(env, data, "retriable", true);
  aav_napi_set_string(env, data, "message", message);
  return data;
}

static napi_value unknown_error(napi_env env, insert_batch_t *b, size_t i) {
  item_outcome_t *o = &b->outcomes[i];
  napi_value data, cause;
  char message[900], order[160];
  aav_asset_describe_order(b->assets[i].prepared, b->rj.repo->names.order_id, order, sizeof order);
  if (napi_create_object(env, &data) != napi_ok || napi_create_object(env, &cause) != napi_ok)
    return NULL;
  const char *cause_kind = aav_errors_describe_bson(env, cause, &o->error, o->labels, o->attempts);
  aav_napi_set_string(env, cause, "kind", cause_kind);
  aav_napi_set_string(env, cause, "message", o->error.message[0] ? o->error.message : "unknown");
  napi_set_named_property(env, data, "cause", cause);
  aav_napi_set_string(env, data, "kind", ERROR_KIND_OUTCOME_UNKNOWN);
  aav_napi_set_string(env, data, "code", "ERR_ASSET_OUTCOME_UNKNOWN");
  aav_napi_set_string(env, data, "reason", o->reason ? o->reason : "UNKNOWN");
  aav_napi_set_bool(env, data, "retriable", false);
  aav_napi_set_number(env, data, "attempts", o->attempts);
  set_id(env, data, &b->assets[i]);
  snprintf(message, sizeof message,
           "the upload to order %s may or may not be stored (%s): call "
           "createWithAtomicVersion again with the same data and this error's _id to settle "
           "it; it then resolves with the stored document, or stores it once",
           order, o->error.message[0] ? o->error.message : "no answer");
  aav_napi_set_string(env, data, "message", message);
  return data;
}

static napi_value refusal(napi_env env, size_t index, const asset_problem_t *p) {
  napi_value props;
  char message[640];
  if (!p)
    return aav_errors_make(env, ERROR_KIND_INTERNAL, "out of memory", NULL);
  snprintf(message, sizeof message, "docs[%zu]: %s", index, p->message);
  if (napi_create_object(env, &props) != napi_ok)
    return NULL;
  aav_napi_set_string(env, props, "code", p->code);
  aav_napi_set_string(env, props, "field", p->field);
  return aav_errors_make(env, ERROR_KIND_VALIDATION, message, props);
}

static napi_value failure(napi_env env, insert_batch_t *b, size_t i) {
  item_outcome_t *o = &b->outcomes[i];
  if (o->reason && strcmp(o->reason, "INVALID") == 0)
    return refusal(env, i, o->problem);
  if (o->state == ITEM_UNKNOWN)
    return unknown_error(env, b, i);
  if (o->reason && strcmp(o->reason, "RETRIES_EXHAUSTED") == 0)
    return exhausted_error(env, b, i);
  napi_value data;
  if (napi_create_object(env, &data) != napi_ok)
    return NULL;
  aav_napi_set_string(env, data, "kind",
                    aav_errors_describe_bson(env, data, &o->error, o->labels, o->attempts));
  aav_napi_set_string(env, data, "message", o->error.message[0] ? o->error.message : "driver error");
  return data;
}

/* The numbers of upload i, at items[i * BATCH_ITEM_FIELDS]. */
static void item_numbers(const insert_batch_t *b, size_t i, size_t doc_end, double *out) {
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

static napi_value batch_results(napi_env env, insert_batch_t *b) {
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
  AAV_NAPI_CALL(env, napi_create_arraybuffer(env, b->n * BATCH_ITEM_FIELDS * sizeof(double),
                                             (void **)&numbers, &buffer));
  AAV_NAPI_CALL(env, napi_create_typedarray(env, napi_float64_array, b->n * BATCH_ITEM_FIELDS,
                                            buffer, 0, &items));
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
  return aav_errors_make(env, ERROR_KIND_OUTCOME_UNKNOWN,
                         "the batch's results could not be handed to JavaScript: its uploads "
                         "may or may not be stored",
                         props);
}

static void batch_finish(napi_env env, insert_batch_t *b) {
  napi_value results = batch_results(env, b);
  if (results)
    aav_repo_job_resolve(env, &b->rj, results);
  else
    aav_repo_job_reject(env, &b->rj, results_lost(env));
  aav_repo_job_release(env, &b->rj);
  batch_free(b);
}

/* ---- deciding what comes next (main thread) -------------------------------- */

/* After a recovery read: what it found is stored; if it could not read, try
 * again until the recovery budget is spent, then the uploads in doubt are
 * unknown. Returns the delay before the next job, or -1 to finish now. */
static int64_t after_recovery(insert_batch_t *b) {
  for (size_t i = 0; i < b->n; i++) {
    if (b->outcomes[i].state == ITEM_PENDING && b->assets[i].found) {
      if (b->recovery_unconfirmed)
        settle(b, i, ITEM_UNKNOWN, &b->recovery_error, "", "WRITE_CONCERN");
      else
        settle(b, i, ITEM_STORED, NULL, NULL, NULL);
    }
  }
  for (size_t i = 0; b->recovery_ok && i < b->n; i++) {
    item_outcome_t *o = &b->outcomes[i];
    if (o->state == ITEM_PENDING && o->refused) {
      /* Answered, looked up, not stored: failed (or, once in doubt, still
       * unknown). */
      settle(b, i, ITEM_FAILED, NULL, NULL, NULL);
    }
  }
  if (b->recovery_ok && b->last_look) {
    settle_pending(b, ITEM_UNKNOWN, NULL, NULL, "REPLY_LOST"); /* each keeps its error */
    return -1;
  }
  if (b->recovery_ok) {
    b->in_doubt = false;
    return 0;
  }
  if (b->recovery_deadline == 0)
    b->recovery_deadline = now_ms() + b->recovery_ms; /* the first look that failed */
  if (now_ms() < b->recovery_deadline)
    return (int64_t)wait_ms(b, ++b->recoveries, RECOVERY_FIRST_MS, RECOVERY_CAP_MS);
  settle_pending(b, ITEM_UNKNOWN, &b->recovery_error, "", "RECOVERY_FAILED");
  return -1;
}

/* The next job looks the pending uploads up by _id before sending any. The
 * recovery budget starts at the first lost reply or failed look, not here: an
 * answered failure has nothing to recover. */
static void look_before_next(insert_batch_t *b) {
  b->in_doubt = true;
  b->recoveries = 0;
}

/* A failure that names no upload: the uploads answered by it go again in
 * halves, until one refused alone is known failed (after a look, when the
 * server may have applied some); each attempt that succeeds doubles the
 * limit again. An attempt then either settles an upload or halves the
 * limit, and halvings beyond the first log2(n) follow doublings, which
 * settle: a batch of n takes at most 2n + log2(n) attempts. */
static void after_unblamed(insert_batch_t *b, size_t k) {
  const attempt_result_t *r = &b->result;
  if (r->look_first)
    look_before_next(b);
  if (r->splittable && b->run_n - k > 1) {
    b->run_limit = (b->run_n - k) / 2;
    return;
  }
  /* Alone, or the command itself refused: every upload it answered failed. */
  for (size_t j = k; j < b->run_n; j++) {
    size_t i = b->run_index[j];
    item_outcome_t *o = &b->outcomes[i];
    o->error = r->error;
    bson_strncpy(o->labels, r->labels, sizeof o->labels);
    if (r->look_first)
      o->refused = true;
    else
      settle(b, i, ITEM_FAILED, &r->error, r->labels, NULL); /* never sent */
  }
}

/* After an attempt: returns the delay before the next job (0 = at once). */
static uint64_t after_attempt(insert_batch_t *b) {
  attempt_result_t *r = &b->result;
  size_t k = r->committed;
  for (size_t j = 0; j < b->run_n; j++)
    b->outcomes[b->run_index[j]].attempts++;
  for (size_t j = 0; j < k && j < b->run_n; j++) {
    if (j >= r->confirmed)
      settle(b, b->run_index[j], ITEM_UNKNOWN, &r->error, r->labels, "WRITE_CONCERN");
    else
      settle(b, b->run_index[j], ITEM_STORED, NULL, NULL, NULL);
  }
  size_t at = k < b->run_n ? b->run_index[k] : b->n;
  switch (r->outcome) {
  case ATTEMPT_DONE:
    if (b->run_limit > 0)
      b->run_limit = b->run_limit >= b->n / 2 ? 0 : b->run_limit * 2;
    return 0;
  case ATTEMPT_WRITE_CONCERN:
    return 0;
  case ATTEMPT_ITEM_FOUND:
    if (r->unconfirmed)
      settle(b, at, ITEM_UNKNOWN, &r->error, r->labels, "WRITE_CONCERN");
    else
      settle(b, at, ITEM_STORED, NULL, NULL, NULL);
    return 0;
  case ATTEMPT_ITEM_REJECTED:
    /* A duplicate was checked against this upload's _id first. */
    settle(b, at, r->error.code == 11000 ? ITEM_REFUSED : ITEM_FAILED, &r->error, r->labels,
           NULL);
    return 0;
  case ATTEMPT_UNPROVEN:
    after_unblamed(b, k);
    return 0;
  case ATTEMPT_CONFLICT:
  case ATTEMPT_TRANSIENT: {
    /* A transient refusal of the whole command (not a write error at one
     * upload) refused every order of the attempt: each spends a retry, so
     * such replies end a batch within maxRetries attempts. */
    bool whole = r->look_first;
    if (whole)
      look_before_next(b);
    /* Otherwise only the order that collided spends its retries and waits;
     * the uploads of other orders after it were not sent, and go again as
     * they are. An attempt that stored some of this order's uploads before
     * the collision made progress: its rest go again at once, unpaid, so a
     * long batch meeting writers chunk after chunk is not failed for being
     * long. A retry is an attempt lost whole to a concurrent writer. */
    bool progress = false;
    for (size_t j = 0; j < k && !progress && !whole; j++)
      progress = aav_asset_same_field(b->assets[b->run_index[j]].prepared, b->assets[at].prepared,
                                  b->rj.repo->names.order_id);
    if (progress)
      return 0;
    int round = 0;
    for (size_t j = k; j < b->run_n; j++) {
      size_t i = b->run_index[j];
      if (!whole && !aav_asset_same_field(b->assets[i].prepared, b->assets[at].prepared,
                                          b->rj.repo->names.order_id))
        continue;
      item_outcome_t *o = &b->outcomes[i];
      o->conflicts++;
      o->transient = r->outcome == ATTEMPT_TRANSIENT;
      o->error = r->error;
      bson_strncpy(o->labels, r->labels, sizeof o->labels);
      if (o->conflicts > b->max_retries)
        settle(b, i, ITEM_FAILED, &r->error, r->labels, "RETRIES_EXHAUSTED");
      else if (o->conflicts > round)
        round = o->conflicts;
    }
    /* The writer we lost to is as slow as we are: wait about one attempt of
     * ours at least, or we meet its next chunk at the same version again. */
    double first = b->attempt_ms > BACKOFF_FIRST_MS ? (double)b->attempt_ms : BACKOFF_FIRST_MS;
    double cap = 4 * first > BACKOFF_CAP_MS ? 4 * first : BACKOFF_CAP_MS;
    return round > 0 ? wait_ms(b, round, first, cap) : 0;
  }
  case ATTEMPT_UNKNOWN:
    for (size_t j = k; j < b->run_n; j++) {
      b->outcomes[b->run_index[j]].in_doubt = true;
      b->outcomes[b->run_index[j]].error = r->error;
    }
    if (b->recovery_deadline == 0) {
      b->recovery_deadline = now_ms() + b->recovery_ms;
    } else if (now_ms() >= b->recovery_deadline) {
      /* Answers keep getting lost: stop sending; one last look settles what
       * it can, the rest end unknown. */
      b->last_look = true;
    }
    look_before_next(b);
    return 0; /* look at once: the server may well be there */
  case ATTEMPT_FAILED:
    settle_pending(b, ITEM_FAILED, &r->error, r->labels, NULL);
    return 0;
  }
  return 0;
}

/* Main thread: reads what the job found and decides what comes next. */
static void batch_complete(napi_env env, job_t *job, bool cancelled) {
  insert_batch_t *b = (insert_batch_t *)job;
  if (cancelled) {
    aav_repo_job_reject_cancelled(env, &b->rj);
    aav_repo_job_release(env, &b->rj);
    batch_free(b);
    return;
  }
  int64_t delay = 0;
  if (b->in_doubt)
    delay = after_recovery(b);
  if (delay == 0 && b->attempted)
    delay = (int64_t)after_attempt(b);
  if (delay < 0 || all_settled(b))
    batch_finish(env, b);
  else
    batch_submit(b, (uint64_t)delay);
}

/* ---- starting a batch (main thread) -------------------------------------- */

/* Only what must be checked before the bytes are copied: that each document
 * is framed as BSON (its length prefix and terminator). Everything else is
 * checked on the threadpool (prepare_all). */
static bool framed_as_bson(const uint8_t *data, size_t len) {
  if (len < 5 || len > INT32_MAX || data[len - 1] != 0)
    return false;
  uint32_t declared = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
                      (uint32_t)data[3] << 24;
  return declared == len;
}

static bool throw_corrupt(napi_env env, size_t index) {
  char message[160];
  napi_value props, error;
  snprintf(message, sizeof message, "docs[%zu]: document is not well-formed BSON", index);
  AAV_NAPI_CALL_BOOL(env, napi_create_object(env, &props));
  aav_napi_set_string(env, props, "code", "ERR_ASSET_CORRUPT");
  aav_napi_set_string(env, props, "field", "");
  error = aav_errors_make(env, ERROR_KIND_VALIDATION, message, props);
  if (error)
    napi_throw(env, error);
  return false;
}

/* The documents arrive end to end in one Buffer, with a Float64Array saying
 * where each ends: two Node-API values per batch, not one per upload. Both
 * are copied first and only the copies are checked and used: the JavaScript
 * memory may be shared with another thread (a SharedArrayBuffer) and change
 * under us, or go once this call returns. */
static bool load_docs(napi_env env, napi_value bytes, napi_value ends, insert_batch_t *b) {
  const uint8_t *data;
  size_t len, n;
  void *ends_data = NULL;
  bool is_typed = false;
  napi_typedarray_type type = napi_int8_array;
  if (!aav_napi_uint8_view(env, bytes, &data, &len) ||
      napi_is_typedarray(env, ends, &is_typed) != napi_ok || !is_typed ||
      napi_get_typedarray_info(env, ends, &type, &n, &ends_data, NULL, NULL) != napi_ok ||
      type != napi_float64_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                          "insertBatch takes the documents' bytes (a Buffer) and where each "
                          "ends (a Float64Array)");
    return false;
  }
  if (n == 0 || n > ATTEMPT_MAX_BATCH) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "docs must hold 1 to 100000 documents");
    return false;
  }
  b->n = n;
  b->assets = calloc(n, sizeof *b->assets);
  b->outcomes = calloc(n, sizeof *b->outcomes);
  b->run = calloc(n, sizeof *b->run);
  b->run_index = calloc(n, sizeof *b->run_index);
  b->raw_end = calloc(n, sizeof *b->raw_end);
  b->raw = malloc(len > 0 ? len : 1);
  if (!b->assets || !b->outcomes || !b->run || !b->run_index || !b->raw_end || !b->raw) {
    napi_throw_error(env, "ERR_ASSET_NO_MEMORY", "out of memory");
    return false;
  }
  memcpy(b->raw, data, len);
  /* Each end is read once, into raw_end, and checked there. */
  const double *end_at = ends_data;
  size_t start = 0;
  for (size_t i = 0; i < n; i++) {
    double e = end_at[i];
    if (!(e > (double)start && e <= (double)len))
      return throw_corrupt(env, i);
    b->raw_end[i] = (size_t)e;
    if ((double)b->raw_end[i] != e || !framed_as_bson(b->raw + start, b->raw_end[i] - start))
      return throw_corrupt(env, i);
    start = b->raw_end[i];
  }
  if (start != len) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "the last document must end where the bytes do");
    return false;
  }
  return true;
}

napi_value aav_insert_batch_napi_start(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4] = {NULL, NULL, NULL, NULL}, this_obj;
  AAV_NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, &this_obj, NULL));
  for (size_t i = argc; i < 4; i++)
    AAV_NAPI_CALL(env, napi_get_undefined(env, &argv[i]));

  insert_batch_t *b = calloc(1, sizeof *b);
  if (!b) {
    napi_throw_error(env, "ERR_ASSET_NO_MEMORY", "out of memory");
    return NULL;
  }
  int64_t max_retries, recovery_ms;
  if (!load_docs(env, argv[0], argv[1], b) ||
      !aav_napi_int_arg(env, argv[2], "maxRetries", 0, ATTEMPT_MAX_RETRIES, &max_retries) ||
      !aav_napi_int_arg(env, argv[3], "recoveryMs", 0, INT64_C(86400000), &recovery_ms)) {
    batch_free(b);
    return NULL;
  }
  b->max_retries = (int)max_retries;
  b->recovery_ms = (uint64_t)recovery_ms;
  napi_value promise;
  if (aav_repo_job_start(env, this_obj, &b->rj, "atomicAssetVersion.insertBatch", batch_execute,
                     batch_complete, &promise))
    batch_submit(b, 0);
  else
    batch_free(b); /* refused: rejected, or an exception is pending */
  return promise;
}
