/* One write attempt for a batch of uploads to one order: find the next free
 * version (or trust a hint), insert the batch as one ordered insertMany with
 * consecutive versions, and say what happened. Blocking driver calls:
 * threadpool threads only; no Node-API. */
#ifndef ATTEMPT_H
#define ATTEMPT_H

#include <mongoc/mongoc.h>

/* Documents per insert command; see attempt_run. */
#define ATTEMPT_INSERT_CHUNK 100

typedef struct {
  bson_t *prepared;  /* caller fields with _id first; owned by the batch */
  bool id_generated; /* _id is ours, so a duplicate _id means "already stored" */
  bson_t *stored;    /* the document as stored once committed; owned by the batch */
  int64_t version;   /* meaningful once stored */
  bool recovered;    /* attempt_recover found it stored */
} pending_asset_t;

typedef enum {
  ATTEMPT_DONE,          /* every item committed */
  ATTEMPT_CONFLICT,      /* a concurrent writer holds a version we tried, or the
                            server called the error transient: re-read, retry */
  ATTEMPT_ITEM_FOUND,    /* items[committed] was stored by an earlier attempt of
                            ours; it is filled in; go on with the rest */
  ATTEMPT_ITEM_REJECTED, /* items[committed] was refused on its own (another
                            unique index, server-side validation) */
  ATTEMPT_UNKNOWN,       /* the connection broke after the insert may have been
                            sent: recover by _id (attempt_recover), then retry */
  ATTEMPT_FAILED,        /* server or network error: fail the remaining items */
} attempt_outcome_t;

typedef struct {
  attempt_outcome_t outcome;
  size_t committed;     /* leading items committed by this attempt */
  int64_t next_version; /* after ITEM_REJECTED: where the next item may start */
  bool read_highest;    /* the attempt had to read the highest version */
  bson_error_t error;   /* ITEM_REJECTED, FAILED, CONFLICT: the server's words */
  bool has_error;
  char labels[160];     /* error labels, comma-separated */
} attempt_result_t;

typedef struct {
  const char *version_index; /* name of the unique (orderId, version) index */
  const bson_t *write_opts;  /* writeConcern and friends; may be NULL */
} attempt_config_t;

/* items[0..n) are the batch's uncommitted uploads, all for one order, in call
 * order. hint > 0 is the version to try first without reading. */
void attempt_run(mongoc_collection_t *coll, const attempt_config_t *config,
                 pending_asset_t *items, size_t n, int64_t hint,
                 attempt_result_t *out);

/* After ATTEMPT_UNKNOWN: looks up which of items[0..n) are stored, by the
 * _ids made for them, and fills those in. Returns false on a read error;
 * otherwise *found is how many leading items are stored (an ordered insert
 * stores a prefix). Items with a caller-supplied _id are never claimed. */
bool attempt_recover(mongoc_collection_t *coll, pending_asset_t *items, size_t n,
                     size_t *found, bson_error_t *error);

/* Highest committed version of the order in `order_filter` ({ orderId: … }),
 * 0 when it has none. Always read from the primary: a lagging secondary would
 * hand the same number out twice. */
bool attempt_read_highest(mongoc_collection_t *coll, const bson_t *order_filter,
                          int64_t *highest, bson_error_t *error);

#endif
