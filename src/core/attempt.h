/* One write attempt for a batch of uploads to one order: read the highest
 * version, insert the batch as ordered inserts with consecutive versions
 * above it, and say what happened. Also the recovery read that settles an
 * insert whose reply was lost. Blocking driver calls: threadpool threads
 * only; no Node-API. */
#ifndef ATTEMPT_H
#define ATTEMPT_H

#include <mongoc/mongoc.h>
#include <stdatomic.h>

#include "asset_doc.h"
#include "limits.h"

/* Documents per insert command; see attempt_run. */
#define ATTEMPT_INSERT_CHUNK 100

/* bson_error_t domain for "this order's versions are out of range", beside
 * the driver's own domains. */
#define ATTEMPT_ERROR_DOMAIN 1001
#define ATTEMPT_ERROR_VERSION_RANGE 1

typedef struct {
  bson_t *prepared;   /* caller fields with _id first; owned by the batch */
  bson_t *stored;     /* the document as stored once committed; owned by the batch */
  int64_t version;    /* meaningful once stored */
  int64_t created_ms; /* its createdAt, when `stored` is the document we built */
  bool read_back;     /* `stored` was read from the server (an earlier attempt or
                         call stored it), not built by this attempt */
  bool found;         /* attempt_recover found it stored under its _id */
} pending_asset_t;

typedef enum {
  ATTEMPT_DONE,          /* every item committed */
  ATTEMPT_CONFLICT,      /* a concurrent writer holds a version we tried (or,
                            on a server that does not name the index, nothing
                            proved otherwise): re-read, retry */
  ATTEMPT_TRANSIENT,     /* the server refused the insert as transient
                            (WriteConflict, TransientTransactionError) without
                            applying it: retry */
  ATTEMPT_ITEM_FOUND,    /* items[committed] is already stored under its _id,
                            by an earlier attempt or an earlier call: filled in */
  ATTEMPT_ITEM_REJECTED, /* items[committed] was refused on its own (another
                            unique index, server-side validation) */
  ATTEMPT_UNKNOWN,       /* items[committed..] may or may not be stored: the
                            insert was sent and no answer came back */
  ATTEMPT_WRITE_CONCERN, /* items[confirmed..committed) are stored, but the
                            server could not confirm the write concern for
                            them: durability unknown; the rest are not stored */
  ATTEMPT_UNPROVEN,      /* the server answered items[committed..] with a
                            failure that names no item and does not prove
                            what it applied (an ok: 0 after FerretDB's
                            one-by-one inserts committed some), or the driver
                            refused them whole before sending: look them up by
                            _id, then send those not stored in smaller parts,
                            so that an upload refused for its content ends
                            alone */
  ATTEMPT_FAILED,        /* items[committed..] are certainly not stored, for a
                            reason that is not theirs (the read of the top
                            failed, nothing was sent) */
} attempt_outcome_t;

typedef struct {
  attempt_outcome_t outcome;
  size_t committed;   /* leading items committed by this attempt */
  size_t confirmed;   /* of those, leading items whose write concern was
                         confirmed: less than committed when the reply carried
                         a writeConcernError, whatever the outcome */
  bool unconfirmed;   /* ITEM_FOUND, but its write concern is not confirmed */
  bool look_first;    /* the reply does not prove that items[committed..] were
                         not applied: look them up by _id before sending them
                         again (UNPROVEN, and a transient refusal of the whole
                         command) */
  bool splittable;    /* UNPROVEN: the refusal may be about one upload's
                         content, so sending fewer can isolate it; not for a
                         refusal of the command itself (not authorized, not
                         primary, a time limit) */
  bson_error_t error; /* the server's or driver's words, for every outcome but DONE */
  char labels[160];   /* error labels, comma-separated */
} attempt_result_t;

typedef struct {
  const char *version_index; /* name of the unique (orderId, version) index */
  const bson_t *write_opts;  /* writeConcern and friends; may be NULL */
  /* Shared by the repository's attempts on every thread: how many orders'
   * tops are read (read_tops.h), set once the server has refused the
   * grouped read; may be NULL. */
  atomic_int *tops_by_find;
  /* The app's field names (asset_doc.h); NULL: the defaults. */
  const aav_field_names_t *names;
} attempt_config_t;

/* items[0..n) are a batch's unsettled uploads, in call order within each
 * order, each order's items contiguous. Reads each order's highest version
 * first, every time (one round trip for all of them): a remembered or guessed
 * version could fill a hole left by a deletion and go down. Then one ordered
 * insert: a failure at item k leaves exactly items[0..k) stored, whatever
 * their orders, so no order gets a gap; the rest are sent again. */
void aav_attempt_run(mongoc_collection_t *coll, const attempt_config_t *config,
                     pending_asset_t **items, size_t n, attempt_result_t *out);

/* After ATTEMPT_UNKNOWN or look_first: looks up which of items[0..n) are stored under
 * their _id (in their order) and marks those found, filled in. Returns false on a read
 * error; items found before it stay marked. Then waits for the effective write concern on
 * what was found; *unconfirmed says it could not. */
bool aav_attempt_recover(mongoc_collection_t *coll, const attempt_config_t *config,
                         pending_asset_t **items, size_t n, bool *unconfirmed,
                         bson_error_t *error);

/* Highest numeric version of the order in `order_filter` ({ <order field>: … }), 0
 * when it has none. Versions that are not numbers (a legacy "v3") are
 * ignored. Always read from the primary: a lagging secondary would hand the
 * same number out twice. */
bool aav_attempt_read_highest(mongoc_collection_t *coll, const bson_t *order_filter,
                              const aav_field_names_t *names, int64_t *highest,
                              bson_error_t *error);

#endif
