/* insertBatch(docs, maxRetries, recoveryMs): uploads of one or many orders
 * (lib/ puts each order's uploads together, in call order), inserted with
 * consecutive versions per order, retried after conflicts on a timer. Resolves
 * with one entry per doc, in order: { doc, version, attempts, retries } or
 * { error, attempts, retries }, where error is data ({ kind, message, code,
 * … }) that lib/errors.js turns into an error object per upload.
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
  const char *reason; /* why it failed or is unknown, a static string, or NULL */
  bson_error_t error; /* ITEM_FAILED, ITEM_UNKNOWN */
  char labels[160];
} item_outcome_t;

typedef struct {
  repo_job_t rj;            /* first */
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
  bool in_doubt;            /* pending items may be stored: recover first */
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

static void batch_free(insert_batch_t *b) {
  for (size_t i = 0; b->assets && i < b->n; i++) {
    bson_destroy(b->assets[i].prepared);
    bson_destroy(b->assets[i].stored);
  }
  free(b->assets);
  free(b->outcomes);
  free(b->run);
  free(b->run_index);
  free(b);
}

static void collect_pending(insert_batch_t *b) {
  b->run_n = 0;
  for (size_t i = 0; i < b->n; i++) {
    if (b->outcomes[i].state == ITEM_PENDING && !b->assets[i].found) {
      b->run[b->run_n] = &b->assets[i];
      b->run_index[b->run_n++] = i;
    }
  }
}

/* Threadpool thread: touches only the batch and the repository's pool. */
static void batch_execute(job_t *job) {
  insert_batch_t *b = (insert_batch_t *)job;
  repository_t *repo = b->rj.repo;
  attempt_config_t config = {repo->version_index, repo->write_opts, &repo->tops_by_find};
  b->attempted = false;
  b->recovery_ok = true;
  b->recovery_unconfirmed = false;
  collect_pending(b);
  mongoc_collection_t *coll;
  mongoc_client_t *client = aav_repo_client_pop(repo, &coll);
  if (b->in_doubt) {
    b->recovery_ok = aav_attempt_recover(coll, &config, b->run, b->run_n,
                                     &b->recovery_unconfirmed, &b->recovery_error);
    collect_pending(b);
  }
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
  aav_asset_describe_order(b->assets[i].prepared, order, sizeof order);
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
  aav_asset_describe_order(b->assets[i].prepared, order, sizeof order);
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

static napi_value failure(napi_env env, insert_batch_t *b, size_t i) {
  item_outcome_t *o = &b->outcomes[i];
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

static napi_value item_result(napi_env env, insert_batch_t *b, size_t i) {
  napi_value entry, value;
  item_outcome_t *o = &b->outcomes[i];
  if (napi_create_object(env, &entry) != napi_ok)
    return NULL;
  aav_napi_set_number(env, entry, "attempts", o->attempts);
  aav_napi_set_number(env, entry, "retries", o->conflicts);
  if (o->state == ITEM_STORED) {
    const bson_t *doc = b->assets[i].stored;
    if (napi_create_buffer_copy(env, doc->len, bson_get_data(doc), NULL, &value) == napi_ok)
      napi_set_named_property(env, entry, "doc", value);
    aav_napi_set_number(env, entry, "version", (double)b->assets[i].version);
  } else {
    value = failure(env, b, i);
    if (value)
      napi_set_named_property(env, entry, "error", value);
  }
  return entry;
}

static void batch_finish(napi_env env, insert_batch_t *b) {
  napi_value results, entry;
  if (napi_create_array_with_length(env, b->n, &results) == napi_ok) {
    for (size_t i = 0; i < b->n; i++) {
      entry = item_result(env, b, i);
      if (entry)
        napi_set_element(env, results, (uint32_t)i, entry);
    }
    aav_repo_job_resolve(env, &b->rj, results);
  } else {
    aav_repo_job_reject(env, &b->rj, NULL);
  }
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
  if (b->recovery_ok && b->last_look) {
    settle_pending(b, ITEM_UNKNOWN, NULL, NULL, "REPLY_LOST"); /* each keeps its error */
    return -1;
  }
  if (b->recovery_ok) {
    b->in_doubt = false;
    return 0;
  }
  if (now_ms() < b->recovery_deadline)
    return (int64_t)wait_ms(b, ++b->recoveries, RECOVERY_FIRST_MS, RECOVERY_CAP_MS);
  settle_pending(b, ITEM_UNKNOWN, &b->recovery_error, "", "RECOVERY_FAILED");
  return -1;
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
  case ATTEMPT_CONFLICT:
  case ATTEMPT_TRANSIENT: {
    /* Only the order that collided spends its retries and waits; the
     * uploads of other orders after it were not sent, and go again as they
     * are. An attempt that stored some of this order's uploads before the
     * collision made progress: its rest go again at once, unpaid, so a long
     * batch meeting writers chunk after chunk is not failed for being long.
     * A retry is an attempt lost whole to a concurrent writer. */
    bool progress = false;
    for (size_t j = 0; j < k && !progress; j++)
      progress = aav_asset_same_field(b->assets[b->run_index[j]].prepared, b->assets[at].prepared,
                                  "orderId");
    if (progress)
      return 0;
    int round = 0;
    for (size_t j = k; j < b->run_n; j++) {
      size_t i = b->run_index[j];
      if (!aav_asset_same_field(b->assets[i].prepared, b->assets[at].prepared, "orderId"))
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
    b->in_doubt = true;
    b->recoveries = 0;
    if (b->recovery_deadline == 0) {
      b->recovery_deadline = now_ms() + b->recovery_ms;
    } else if (now_ms() >= b->recovery_deadline) {
      /* Answers keep getting lost: stop sending; one last look settles what
       * it can, the rest end unknown. */
      b->last_look = true;
    }
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

static void throw_problem(napi_env env, size_t index, const asset_problem_t *p) {
  napi_value props, error;
  char message[640];
  snprintf(message, sizeof message, "docs[%zu]: %s", index, p->message);
  if (napi_create_object(env, &props) != napi_ok)
    return;
  aav_napi_set_string(env, props, "code", p->code);
  aav_napi_set_string(env, props, "field", p->field);
  error = aav_errors_make(env, ERROR_KIND_VALIDATION, message, props);
  if (error)
    napi_throw(env, error);
}

/* Copies and validates every document. lib/ has validated each already; this
 * is the guard for anything else that reaches the native API. */
static bool load_docs(napi_env env, napi_value docs, insert_batch_t *b) {
  bool is_array;
  uint32_t n;
  AAV_NAPI_CALL_BOOL(env, napi_is_array(env, docs, &is_array));
  if (!is_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "docs must be an array of BSON Buffers");
    return false;
  }
  AAV_NAPI_CALL_BOOL(env, napi_get_array_length(env, docs, &n));
  if (n == 0 || n > ATTEMPT_MAX_BATCH) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "docs must hold 1 to 100000 documents");
    return false;
  }
  b->assets = calloc(n, sizeof *b->assets);
  b->outcomes = calloc(n, sizeof *b->outcomes);
  if (!b->assets || !b->outcomes) {
    napi_throw_error(env, "ERR_ASSET_NO_MEMORY", "out of memory");
    return false;
  }
  b->run = calloc(n, sizeof *b->run);
  b->run_index = calloc(n, sizeof *b->run_index);
  if (!b->run || !b->run_index) {
    napi_throw_error(env, "ERR_ASSET_NO_MEMORY", "out of memory");
    return false;
  }
  b->n = n;
  for (uint32_t i = 0; i < n; i++) {
    napi_value element;
    const uint8_t *data;
    size_t len;
    AAV_NAPI_CALL_BOOL(env, napi_get_element(env, docs, i, &element));
    if (!aav_napi_uint8_view(env, element, &data, &len)) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "docs must be an array of BSON Buffers");
      return false;
    }
    asset_problem_t problem;
    bool id_generated;
    b->assets[i].prepared = aav_asset_prepare(data, len, &id_generated, &problem);
    b->outcomes[i].in_doubt = !id_generated;
    if (!b->assets[i].prepared) {
      throw_problem(env, i, &problem);
      return false;
    }
  }
  return true;
}

napi_value aav_insert_batch_napi_start(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3] = {NULL, NULL, NULL}, this_obj;
  AAV_NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, &this_obj, NULL));
  for (size_t i = argc; i < 3; i++)
    AAV_NAPI_CALL(env, napi_get_undefined(env, &argv[i]));

  insert_batch_t *b = calloc(1, sizeof *b);
  if (!b) {
    napi_throw_error(env, "ERR_ASSET_NO_MEMORY", "out of memory");
    return NULL;
  }
  int64_t max_retries, recovery_ms;
  if (!load_docs(env, argv[0], b) ||
      !aav_napi_int_arg(env, argv[1], "maxRetries", 0, ATTEMPT_MAX_RETRIES, &max_retries) ||
      !aav_napi_int_arg(env, argv[2], "recoveryMs", 0, INT64_C(86400000), &recovery_ms)) {
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
