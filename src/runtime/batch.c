#include "runtime/batch.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/server_types.h"

const char *aav_batch_reason_name(item_reason_t reason) {
  switch (reason) {
  case REASON_NONE:
    return NULL;
  case REASON_INVALID:
    return "INVALID";
  case REASON_RETRIES_EXHAUSTED:
    return "RETRIES_EXHAUSTED";
  case REASON_WRITE_CONCERN:
    return "WRITE_CONCERN";
  case REASON_REPLY_LOST:
    return "REPLY_LOST";
  case REASON_RECOVERY_FAILED:
    return "RECOVERY_FAILED";
  }
  return NULL;
}

static void free_raw(aav_batch_t *b) {
  free(b->raw);
  free(b->raw_end);
  b->raw = NULL;
  b->raw_end = NULL;
}

void aav_batch_destroy(aav_batch_t *b) {
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
}

/* Gathers into run[] the unsettled uploads: all of them for a look by _id,
 * or those the next attempt sends (up to run_limit, none refused). */
static void collect_pending(aav_batch_t *b, bool to_send) {
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
static void prepare_all(aav_batch_t *b) {
  size_t start = 0;
  for (size_t i = 0; i < b->n; i++) {
    asset_problem_t problem;
    bool id_generated = false;
    b->assets[i].prepared =
        aav_asset_prepare(b->raw + start, b->raw_end[i] - start, &id_generated, &problem);
    start = b->raw_end[i];
    item_outcome_t *o = &b->outcomes[i];
    if (b->assets[i].prepared && b->repo->ferretdb &&
        !aav_server_types_ferretdb_ok(b->assets[i].prepared, &problem)) {
      bson_destroy(b->assets[i].prepared);
      b->assets[i].prepared = NULL;
    }
    if (b->assets[i].prepared) {
      o->in_doubt =
          !id_generated; /* the caller's _id: an earlier call may have stored it */
      continue;
    }
    o->state = ITEM_FAILED;
    o->reason = REASON_INVALID;
    o->problem = malloc(sizeof *o->problem);
    if (o->problem)
      *o->problem = problem;
  }
  free_raw(b);
}

bool aav_batch_init(aav_batch_t *b, size_t n, size_t len) {
  b->n = n;
  b->assets = calloc(n, sizeof *b->assets);
  b->outcomes = calloc(n, sizeof *b->outcomes);
  b->run = calloc(n, sizeof *b->run);
  b->run_index = calloc(n, sizeof *b->run_index);
  b->raw_end = calloc(n, sizeof *b->raw_end);
  b->raw = malloc(len > 0 ? len : 1);
  return b->assets && b->outcomes && b->run && b->run_index && b->raw_end && b->raw;
}

void aav_batch_execute(aav_batch_t *b) {
  repository_t *repo = b->repo;
  if (b->raw)
    prepare_all(b);
  attempt_config_t config = {repo->version_index, repo->write_opts, &repo->tops_by_find,
                             &repo->names};
  b->attempted = false;
  b->recovery_ok = true;
  b->recovery_unconfirmed = false;
  mongoc_collection_t *coll;
  mongoc_client_t *client = aav_store_client_pop(repo, &coll);
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
  aav_store_client_push(repo, client, coll);
}

static uint64_t now_ms(void) { return uv_hrtime() / 1000000; }

/* Settles one item. A failure of an item that an attempt may have stored is
 * reported as unknown, never as "not stored". */
static void settle(aav_batch_t *b, size_t i, item_state_t state,
                   const bson_error_t *error, const char *labels, item_reason_t reason) {
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

static void settle_pending(aav_batch_t *b, item_state_t state, const bson_error_t *error,
                           const char *labels, item_reason_t reason) {
  for (size_t i = 0; i < b->n; i++)
    if (b->outcomes[i].state == ITEM_PENDING)
      settle(b, i, state, error, labels, reason);
}

static bool all_settled(const aav_batch_t *b) {
  for (size_t i = 0; i < b->n; i++)
    if (b->outcomes[i].state == ITEM_PENDING)
      return false;
  return true;
}

/* ---- deciding what comes next (main thread) -------------------------------- */

/* After a recovery read: what it found is stored; if it could not read, try
 * again until the recovery budget is spent, then the uploads in doubt are
 * unknown. Returns the delay before the next job, or -1 to finish now. */
static int64_t after_recovery(aav_batch_t *b) {
  for (size_t i = 0; i < b->n; i++) {
    if (b->outcomes[i].state == ITEM_PENDING && b->assets[i].found) {
      if (b->recovery_unconfirmed)
        settle(b, i, ITEM_UNKNOWN, &b->recovery_error, "", REASON_WRITE_CONCERN);
      else
        settle(b, i, ITEM_STORED, NULL, NULL, REASON_NONE);
    }
  }
  for (size_t i = 0; b->recovery_ok && i < b->n; i++) {
    item_outcome_t *o = &b->outcomes[i];
    if (o->state == ITEM_PENDING && o->refused) {
      /* Answered, looked up, not stored: failed (or, once in doubt, still
       * unknown). */
      settle(b, i, ITEM_FAILED, NULL, NULL, REASON_NONE);
    }
  }
  if (b->recovery_ok && b->last_look) {
    settle_pending(b, ITEM_UNKNOWN, NULL, NULL,
                   REASON_REPLY_LOST); /* each keeps its error */
    return -1;
  }
  if (b->recovery_ok) {
    b->in_doubt = false;
    return 0;
  }
  if (b->recovery_deadline == 0)
    b->recovery_deadline = now_ms() + b->recovery_ms; /* the first look that failed */
  if (now_ms() < b->recovery_deadline)
    return (int64_t)aav_backoff_recovery_ms(++b->recoveries, b->rng);
  settle_pending(b, ITEM_UNKNOWN, &b->recovery_error, "", REASON_RECOVERY_FAILED);
  return -1;
}

/* The next job looks the pending uploads up by _id before sending any. The
 * recovery budget starts at the first lost reply or failed look, not here: an
 * answered failure has nothing to recover. */
static void look_before_next(aav_batch_t *b) {
  b->in_doubt = true;
  b->recoveries = 0;
}

/* A failure that names no upload: the uploads answered by it go again in
 * halves, until one refused alone is known failed (after a look, when the
 * server may have applied some); each attempt that succeeds doubles the
 * limit again. An attempt then either settles an upload or halves the
 * limit, and halvings beyond the first log2(n) follow doublings, which
 * settle: a batch of n takes at most 2n + log2(n) attempts. */
static void after_unblamed(aav_batch_t *b, size_t k) {
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
      settle(b, i, ITEM_FAILED, &r->error, r->labels, REASON_NONE); /* never sent */
  }
}

/* After an attempt: returns the delay before the next job (0 = at once). */
static uint64_t after_attempt(aav_batch_t *b) {
  attempt_result_t *r = &b->result;
  size_t k = r->committed;
  for (size_t j = 0; j < b->run_n; j++)
    b->outcomes[b->run_index[j]].attempts++;
  for (size_t j = 0; j < k && j < b->run_n; j++) {
    if (j >= r->confirmed)
      settle(b, b->run_index[j], ITEM_UNKNOWN, &r->error, r->labels,
             REASON_WRITE_CONCERN);
    else
      settle(b, b->run_index[j], ITEM_STORED, NULL, NULL, REASON_NONE);
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
      settle(b, at, ITEM_UNKNOWN, &r->error, r->labels, REASON_WRITE_CONCERN);
    else
      settle(b, at, ITEM_STORED, NULL, NULL, REASON_NONE);
    return 0;
  case ATTEMPT_ITEM_REJECTED:
    /* A duplicate was checked against this upload's _id first. */
    settle(b, at, r->error.code == 11000 ? ITEM_REFUSED : ITEM_FAILED, &r->error,
           r->labels, REASON_NONE);
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
      progress = aav_asset_same_field(b->assets[b->run_index[j]].prepared,
                                      b->assets[at].prepared, b->repo->names.order_id);
    if (progress)
      return 0;
    int round = 0;
    for (size_t j = k; j < b->run_n; j++) {
      size_t i = b->run_index[j];
      if (!whole && !aav_asset_same_field(b->assets[i].prepared, b->assets[at].prepared,
                                          b->repo->names.order_id))
        continue;
      item_outcome_t *o = &b->outcomes[i];
      o->conflicts++;
      o->transient = r->outcome == ATTEMPT_TRANSIENT;
      o->error = r->error;
      bson_strncpy(o->labels, r->labels, sizeof o->labels);
      if (o->conflicts > b->max_retries)
        settle(b, i, ITEM_FAILED, &r->error, r->labels, REASON_RETRIES_EXHAUSTED);
      else if (o->conflicts > round)
        round = o->conflicts;
    }
    return round > 0 ? aav_backoff_conflict_ms(round, b->attempt_ms, b->rng) : 0;
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
    settle_pending(b, ITEM_FAILED, &r->error, r->labels, REASON_NONE);
    return 0;
  }
  return 0;
}

int64_t aav_batch_next(aav_batch_t *b) {
  int64_t delay = 0;
  if (b->in_doubt)
    delay = after_recovery(b);
  if (delay == 0 && b->attempted)
    delay = (int64_t)after_attempt(b);
  if (delay < 0 || all_settled(b))
    return -1;
  return delay;
}
