/* insertBatch(docs, maxRetries, hint): one order's uploads, inserted with
 * consecutive versions, retried after conflicts on a timer. Resolves with one
 * entry per doc, in order: { doc, version, attempts } or { error, attempts }.
 *
 * One batch lives through several jobs: each attempt runs on the threadpool,
 * its completion (main thread) decides whether to finish, go on at once, or
 * park on the scheduler's timer for a backoff; no thread ever sleeps. */
#include <stdlib.h>
#include <string.h>

#include "core/asset_doc.h"
#include "core/attempt.h"
#include "errors.h"
#include "napi_check.h"
#include "repository.h"

#define BACKOFF_FIRST_MS 5.0
#define BACKOFF_CAP_MS 200.0
#define MAX_BATCH 100000 /* the server's maxWriteBatchSize */

typedef enum { ITEM_PENDING, ITEM_STORED, ITEM_FAILED } item_state_t;

typedef struct {
  item_state_t state;
  int attempts;        /* attempts it took part in */
  int conflicts;       /* of those, lost to a concurrent writer */
  bool exhausted;      /* failed because every retry collided */
  bson_error_t error;  /* ITEM_FAILED otherwise */
  char labels[160];
} item_outcome_t;

typedef struct {
  repo_job_t rj;            /* first */
  pending_asset_t *assets;  /* owned, n entries, with their bson_t documents */
  item_outcome_t *outcomes; /* owned, n entries */
  size_t n;
  size_t next;              /* assets before it are settled */
  int64_t hint;             /* version to try without reading; 0 = read */
  bool recover;             /* the last insert's outcome is unknown */
  size_t recovered;         /* leading items recovery found stored; by execute */
  unsigned failures_seen;   /* repo->connection_failures when (re)submitted */
  bool fail_fast;           /* set by before_run: the server went away meanwhile */
  bson_error_t fail_fast_error;
  int retries;              /* conflicts so far */
  int max_retries;
  bson_error_t last_conflict;
  attempt_result_t result;  /* written by execute, read by complete */
  char order[160];          /* the order, for messages */
} insert_batch_t;

static void batch_free(insert_batch_t *b) {
  for (size_t i = 0; b->assets && i < b->n; i++) {
    bson_destroy(b->assets[i].prepared);
    bson_destroy(b->assets[i].stored);
  }
  free(b->assets);
  free(b->outcomes);
  free(b);
}

/* Threadpool thread. */
/* An outcome decided without an insert; error may be NULL. */
static void set_outcome(attempt_result_t *r, attempt_outcome_t outcome, const bson_error_t *error) {
  memset(r, 0, sizeof *r);
  r->outcome = outcome;
  if (error) {
    r->error = *error;
    r->has_error = true;
  }
}

static void batch_execute(job_t *job) {
  insert_batch_t *b = (insert_batch_t *)job;
  repository_t *repo = b->rj.repo;
  attempt_config_t config = {repo->version_index, repo->write_opts};
  b->recovered = 0;
  if (b->fail_fast) {
    set_outcome(&b->result, ATTEMPT_FAILED, &b->fail_fast_error);
    return;
  }
  mongoc_collection_t *coll;
  mongoc_client_t *client = repo_client_pop(repo, &coll);
  bson_error_t error;
  if (b->recover && !attempt_recover(coll, b->assets + b->next, b->n - b->next,
                                     &b->recovered, &error)) {
    set_outcome(&b->result, ATTEMPT_FAILED, &error);
  } else {
    size_t first = b->next + b->recovered;
    if (first < b->n)
      attempt_run(coll, &config, b->assets + first, b->n - first, b->hint, &b->result);
    else
      set_outcome(&b->result, ATTEMPT_DONE, NULL);
  }
  repo_client_push(repo, client, coll);
}

/* Main thread, just before the threadpool. */
static void batch_before_run(job_t *job) {
  insert_batch_t *b = (insert_batch_t *)job;
  repository_t *repo = b->rj.repo;
  b->fail_fast = repo->connection_failures != b->failures_seen;
  if (b->fail_fast)
    b->fail_fast_error = repo->connection_error;
}

static bool is_unreachable(const bson_error_t *error) {
  return error->domain == MONGOC_ERROR_SERVER_SELECTION || error->domain == MONGOC_ERROR_STREAM;
}

static void batch_submit(insert_batch_t *b, uint64_t delay_ms) {
  b->failures_seen = b->rj.repo->connection_failures;
  b->rj.job.before_run = batch_before_run;
  if (delay_ms > 0)
    scheduler_submit_after(&b->rj.state->scheduler, &b->rj.job, delay_ms);
  else
    scheduler_submit(&b->rj.state->scheduler, &b->rj.job);
}

/* Jittered, doubling waits: 5–15 ms first, as the reference design waits, then
 * 10–30, 20–60, … capped, so processes that collide drift apart. */
static uint64_t backoff_ms(addon_state_t *state, int retry) {
  double window = BACKOFF_FIRST_MS;
  for (int i = 1; i < retry && window < BACKOFF_CAP_MS; i++)
    window *= 2;
  if (window > BACKOFF_CAP_MS)
    window = BACKOFF_CAP_MS;
  return (uint64_t)(window + addon_state_random(state) * 2 * window);
}

static void fail_remaining(insert_batch_t *b, const bson_error_t *error,
                           const char *labels, bool exhausted) {
  for (size_t i = b->next; i < b->n; i++) {
    b->outcomes[i].state = ITEM_FAILED;
    b->outcomes[i].exhausted = exhausted;
    b->outcomes[i].error = *error;
    bson_strncpy(b->outcomes[i].labels, labels, sizeof b->outcomes[i].labels);
  }
  b->next = b->n;
}

static napi_value exhausted_error(napi_env env, insert_batch_t *b, const item_outcome_t *o) {
  napi_value props;
  char message[800];
  if (napi_create_object(env, &props) != napi_ok)
    return NULL;
  errors_set_number(env, props, "code", 11000);
  errors_set_string(env, props, "codeName", "DuplicateKey");
  errors_set_string(env, props, "reason", "RETRIES_EXHAUSTED");
  napi_value retriable;
  if (napi_get_boolean(env, true, &retriable) == napi_ok)
    napi_set_named_property(env, props, "retriable", retriable);
  errors_set_number(env, props, "attempts", o->attempts);
  snprintf(message, sizeof message,
           "could not give an upload to order %s a version after %d attempts: each "
           "collided with a concurrent writer (%s)",
           b->order, o->attempts, b->last_conflict.message);
  return errors_make(env, ERROR_KIND_CONFLICT, message, props);
}

static napi_value item_result(napi_env env, insert_batch_t *b, size_t i) {
  napi_value entry, value;
  item_outcome_t *o = &b->outcomes[i];
  if (napi_create_object(env, &entry) != napi_ok)
    return NULL;
  errors_set_number(env, entry, "attempts", o->attempts);
  errors_set_number(env, entry, "retries", o->conflicts);
  if (o->state == ITEM_STORED) {
    const bson_t *doc = b->assets[i].stored;
    if (napi_create_buffer_copy(env, doc->len, bson_get_data(doc), NULL, &value) == napi_ok)
      napi_set_named_property(env, entry, "doc", value);
    errors_set_number(env, entry, "version", (double)b->assets[i].version);
  } else {
    value = o->exhausted ? exhausted_error(env, b, o)
                         : errors_from_bson(env, &o->error, o->labels, o->attempts);
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
    repo_job_resolve(env, &b->rj, results);
  } else {
    repo_job_reject(env, &b->rj, NULL);
  }
  repo_job_release(env, &b->rj);
  batch_free(b);
}

/* Main thread: reads the attempt's outcome and decides what comes next. */
static void batch_complete(napi_env env, job_t *job, bool cancelled) {
  insert_batch_t *b = (insert_batch_t *)job;
  attempt_result_t *r = &b->result;
  if (cancelled) {
    repo_job_reject_cancelled(env, &b->rj);
    repo_job_release(env, &b->rj);
    batch_free(b);
    return;
  }
  for (size_t i = b->next; i < b->n; i++)
    b->outcomes[i].attempts++;
  b->recover = false;
  for (size_t i = 0; i < b->recovered + r->committed; i++)
    b->outcomes[b->next++].state = ITEM_STORED;

  bool wait = false;
  switch (r->outcome) {
  case ATTEMPT_DONE:
    break;
  case ATTEMPT_ITEM_FOUND:
    b->outcomes[b->next++].state = ITEM_STORED;
    b->hint = 0;
    break;
  case ATTEMPT_ITEM_REJECTED:
    b->outcomes[b->next].state = ITEM_FAILED;
    b->outcomes[b->next].error = r->error;
    bson_strncpy(b->outcomes[b->next].labels, r->labels, sizeof r->labels);
    b->next++;
    b->hint = r->next_version; /* that version went unused: the next item takes it */
    break;
  case ATTEMPT_CONFLICT:
    for (size_t i = b->next; i < b->n; i++)
      b->outcomes[i].conflicts++;
    b->last_conflict = r->error;
    b->hint = 0;
    /* A remembered version that someone else took is a wrong guess, not a
     * lost race: read and go again at once, without spending a retry. */
    if (!r->read_highest)
      break;
    if (++b->retries > b->max_retries)
      fail_remaining(b, &r->error, r->labels, true);
    wait = true;
    break;
  case ATTEMPT_UNKNOWN:
    /* Retried like a conflict, after finding out what the lost insert
     * stored: never the same upload twice under two versions. */
    b->recover = true;
    b->hint = 0;
    if (++b->retries > b->max_retries)
      fail_remaining(b, &r->error, r->labels, false);
    wait = true;
    break;
  case ATTEMPT_FAILED:
    if (!b->fail_fast && is_unreachable(&r->error)) {
      b->rj.repo->connection_failures++;
      b->rj.repo->connection_error = r->error;
    }
    fail_remaining(b, &r->error, r->labels, false);
    break;
  }

  if (b->next >= b->n) {
    batch_finish(env, b);
  } else {
    batch_submit(b, wait ? backoff_ms(b->rj.state, b->retries) : 0);
  }
}

/* ---- starting a batch (main thread) -------------------------------------- */

static void describe_order(const bson_t *prepared, char *out, size_t size) {
  bson_iter_t it;
  bson_iter_init_find(&it, prepared, "orderId");
  if (BSON_ITER_HOLDS_OID(&it)) {
    char hex[25];
    bson_oid_to_string(bson_iter_oid(&it), hex);
    snprintf(out, size, "ObjectId(\"%s\")", hex);
  } else {
    snprintf(out, size, "\"%.120s\"", bson_iter_utf8(&it, NULL));
  }
}

static bool same_order(const bson_t *a, const bson_t *b) {
  bson_iter_t ia, ib;
  if (!bson_iter_init_find(&ia, a, "orderId") || !bson_iter_init_find(&ib, b, "orderId") ||
      bson_iter_type(&ia) != bson_iter_type(&ib))
    return false;
  if (BSON_ITER_HOLDS_OID(&ia))
    return bson_oid_equal(bson_iter_oid(&ia), bson_iter_oid(&ib));
  uint32_t la, lb;
  const char *sa = bson_iter_utf8(&ia, &la), *sb = bson_iter_utf8(&ib, &lb);
  return la == lb && memcmp(sa, sb, la) == 0;
}

static void throw_problem(napi_env env, size_t index, const asset_problem_t *p) {
  napi_value props, error;
  char message[640];
  snprintf(message, sizeof message, "docs[%zu]: %s", index, p->message);
  if (napi_create_object(env, &props) != napi_ok)
    return;
  errors_set_string(env, props, "code", p->code);
  errors_set_string(env, props, "field", p->field);
  error = errors_make(env, ERROR_KIND_VALIDATION, message, props);
  if (error)
    napi_throw(env, error);
}

/* Copies and validates every document. lib/ has validated each already; this
 * is the guard for anything else that reaches the native API. */
static bool load_docs(napi_env env, napi_value docs, insert_batch_t *b) {
  bool is_array;
  uint32_t n;
  NAPI_CALL_BOOL(env, napi_is_array(env, docs, &is_array));
  if (!is_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "docs must be an array of BSON Buffers");
    return false;
  }
  NAPI_CALL_BOOL(env, napi_get_array_length(env, docs, &n));
  if (n == 0 || n > MAX_BATCH) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "docs must hold 1 to 100000 documents");
    return false;
  }
  b->assets = calloc(n, sizeof *b->assets);
  b->outcomes = calloc(n, sizeof *b->outcomes);
  if (!b->assets || !b->outcomes) {
    napi_throw_error(env, "ERR_ASSET_NO_MEMORY", "out of memory");
    return false;
  }
  b->n = n;
  for (uint32_t i = 0; i < n; i++) {
    napi_value element;
    bool is_typed;
    napi_typedarray_type type = napi_int8_array;
    size_t len = 0;
    void *data = NULL;
    NAPI_CALL_BOOL(env, napi_get_element(env, docs, i, &element));
    NAPI_CALL_BOOL(env, napi_is_typedarray(env, element, &is_typed));
    if (is_typed)
      NAPI_CALL_BOOL(env, napi_get_typedarray_info(env, element, &type, &len, &data, NULL, NULL));
    if (!is_typed || type != napi_uint8_array) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "docs must be an array of BSON Buffers");
      return false;
    }
    asset_problem_t problem;
    b->assets[i].prepared = asset_prepare(data, len, &b->assets[i].id_generated, &problem);
    if (!b->assets[i].prepared) {
      throw_problem(env, i, &problem);
      return false;
    }
    if (i > 0 && !same_order(b->assets[0].prepared, b->assets[i].prepared)) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE",
                            "every document of one batch must have the same orderId");
      return false;
    }
  }
  describe_order(b->assets[0].prepared, b->order, sizeof b->order);
  return true;
}

static bool int_arg(napi_env env, napi_value value, const char *what, int64_t min,
                    int64_t max, int64_t *out) {
  napi_valuetype type;
  double d;
  NAPI_CALL_BOOL(env, napi_typeof(env, value, &type));
  if (type == napi_number)
    NAPI_CALL_BOOL(env, napi_get_value_double(env, value, &d));
  if (type != napi_number || d != d || d < (double)min || d > (double)max ||
      d != (double)(int64_t)d) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s must be an integer from %lld to %lld", what,
             (long long)min, (long long)max);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
    return false;
  }
  *out = (int64_t)d;
  return true;
}

napi_value insert_batch_napi_start(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3] = {NULL, NULL, NULL}, this_obj;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, &this_obj, NULL));
  for (size_t i = argc; i < 3; i++)
    NAPI_CALL(env, napi_get_undefined(env, &argv[i]));

  insert_batch_t *b = calloc(1, sizeof *b);
  if (!b) {
    napi_throw_error(env, "ERR_ASSET_NO_MEMORY", "out of memory");
    return NULL;
  }
  int64_t max_retries, hint;
  if (!load_docs(env, argv[0], b) ||
      !int_arg(env, argv[1], "maxRetries", 0, 1000, &max_retries) ||
      !int_arg(env, argv[2], "hint", 0, INT64_C(9007199254740991), &hint)) {
    batch_free(b);
    return NULL;
  }
  b->max_retries = (int)max_retries;
  b->hint = hint;
  napi_value promise = repo_job_start(env, this_obj, &b->rj, "atomicAssetVersion.insertBatch",
                                      batch_execute, batch_complete);
  if (b->rj.repo_ref)
    batch_submit(b, 0);
  else
    batch_free(b); /* refused: rejected, or an exception is pending */
  return promise;
}
