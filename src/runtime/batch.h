/* The threadpool work that runs one insertBatch: uploads of one or many
 * orders (lib/ puts each order's uploads together, in call order), inserted
 * with consecutive versions per order, retried after conflicts on a timer.
 *
 * One batch lives through several jobs: each attempt runs on the threadpool
 * (aav_batch_execute), and its completion on the main thread asks
 * aav_batch_next whether to finish, go on at once, or wait for a backoff; no
 * thread ever sleeps. napi/insert_batch.c owns the job, the promise and the
 * results handed to JavaScript.
 *
 * An upload that an attempt may have stored (the reply was lost) is "in
 * doubt" from then on. Before the batch inserts again it looks the uploads
 * up by _id (recovery, with its own time budget, separate from the conflict
 * retries). An upload once in doubt ends stored or unknown, never as a plain
 * failure: a lost insert may still land later. */
#ifndef BATCH_H
#define BATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "core/asset_doc.h"
#include "core/attempt.h"
#include "core/backoff.h"
#include "runtime/store.h"

typedef enum {
  ITEM_PENDING,
  ITEM_STORED,
  ITEM_FAILED,  /* certainly not stored */
  ITEM_UNKNOWN, /* may or may not be stored */
  ITEM_REFUSED, /* for settle(): failed, and shown not stored even if in doubt */
} item_state_t;

/* Why an upload failed or is unknown; the `reason` its error carries
 * (aav_batch_reason_name), except REASON_INVALID, whose error is a
 * ValidationError built from its problem. */
typedef enum {
  REASON_NONE,              /* the server's or driver's error says it all */
  REASON_INVALID,           /* its bytes were refused before any write */
  REASON_RETRIES_EXHAUSTED, /* lost maxRetries conflicts */
  REASON_WRITE_CONCERN,     /* stored, the write concern not confirmed */
  REASON_REPLY_LOST,        /* sent, no answer, the last look did not find it */
  REASON_RECOVERY_FAILED,   /* could not be looked up within the recovery budget */
} item_reason_t;

/* The string a reason is reported as; NULL for REASON_NONE. */
const char *aav_batch_reason_name(item_reason_t reason);

typedef struct {
  item_state_t state;
  int attempts;   /* attempts it took part in */
  int conflicts;  /* of those, lost to a concurrent writer (or refused as transient) */
  bool transient; /* the last of those was a transient refusal, not E11000 */
  bool in_doubt;  /* an attempt may have stored it, or (a caller's _id) an
                     earlier call did */
  bool refused;   /* refused by a failure that names no upload, alone or with
                     the command: once a look by _id shows it is not
                     stored, it failed */
  item_reason_t reason;     /* why it failed or is unknown */
  asset_problem_t *problem; /* owned: its bytes were refused before any write */
  bson_error_t error;       /* ITEM_FAILED, ITEM_UNKNOWN */
  char labels[160];
} item_outcome_t;

typedef struct {
  repository_t *repo;       /* borrowed: the job holds the JS object that owns it */
  backoff_rng_t *rng;       /* borrowed: the environment's, main thread only */
  uint8_t *raw;             /* owned until prepared: the caller's bytes, end to end */
  size_t *raw_end;          /* owned until prepared: doc i ends at raw[raw_end[i]] */
  pending_asset_t *assets;  /* owned, n entries, with their bson_t documents */
  item_outcome_t *outcomes; /* owned, n entries */
  size_t n;
  /* Written by execute, read by complete: the items an attempt worked on. */
  pending_asset_t **run; /* owned array of n pointers into assets */
  size_t *run_index;     /* owned, n entries: run[i] is assets[run_index[i]] */
  size_t run_n;
  bool attempted;      /* execute ran attempt_run */
  uint64_t attempt_ms; /* how long that took, read and insert */
  /* Recovery. */
  bool in_doubt;              /* pending items may be stored: look them up first */
  size_t run_limit;           /* pending uploads the next attempt may send (0: all):
                                 halved after a refusal that names no upload, so
                                 the one refused for its content ends alone */
  uint64_t recovery_ms;       /* budget from the first unknown outcome */
  uint64_t recovery_deadline; /* uv_hrtime() in ms; 0 until the first unknown */
  int recoveries;             /* failed recovery reads so far, for the backoff */
  bool last_look;             /* the budget is spent: recover once more, insert no more */
  bool recovery_ok;           /* by execute */
  bool recovery_unconfirmed;  /* by execute: found, write concern not confirmed */
  bson_error_t recovery_error;
  int max_retries;         /* conflicts each upload may lose */
  attempt_result_t result; /* written by execute, read by complete */
} aav_batch_t;

/* Main thread: room for n uploads and a copy of `len` bytes (the caller
 * copies them into b->raw and fills b->raw_end). False: out of memory;
 * aav_batch_destroy frees what was made. */
bool aav_batch_init(aav_batch_t *b, size_t n, size_t len);
/* Frees what the batch owns (not b itself). */
void aav_batch_destroy(aav_batch_t *b);

/* Threadpool thread: touches only the batch and the repository's pool. The
 * first run checks each upload's bytes and builds its document. */
void aav_batch_execute(aav_batch_t *b);

/* Main thread, after each execute: reads what it found. Returns the delay in
 * ms before the next execute, or -1 when every upload is settled. */
int64_t aav_batch_next(aav_batch_t *b);

#endif
