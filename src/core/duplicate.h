/* Which unique index refused an insert with E11000, and so whether a retry
 * can store the upload. Blocking driver calls: threadpool threads only. */
#ifndef DUPLICATE_H
#define DUPLICATE_H

#include <mongoc/mongoc.h>

#include "asset_doc.h"

typedef enum {
  /* The (orderId, version) pair is taken, or nothing proved another cause:
   * re-read and retry. When unsure, this is the answer, because a retry never
   * harms and failing an upload that a retry could store would. */
  DUPLICATE_VERSION,
  /* A document with this _id and this order is stored: it is this upload,
   * stored by an earlier attempt or an earlier call. */
  DUPLICATE_SAME_UPLOAD,
  /* Another unique index holds the upload's values, or its _id belongs to
   * another order's document: no retry can store it. */
  DUPLICATE_OTHER,
  /* The _id may be taken and the lookup that would tell whose it is failed:
   * the upload may be stored already. */
  DUPLICATE_UNSURE,
} duplicate_kind_t;

/* `write_error` is the server's write error, `doc` the document as sent.
 * MongoDB names the index (keyPattern since 4.4, " index: <name>" in errmsg);
 * FerretDB v1 names none, and then the collection is asked: by _id first,
 * then each other unique index with the upload's values. Fills *same_upload
 * (caller destroys) for DUPLICATE_SAME_UPLOAD, and index_name for
 * DUPLICATE_OTHER. */
duplicate_kind_t aav_duplicate_classify(mongoc_collection_t *coll,
                                        const char *version_index,
                                        const aav_field_names_t *names,
                                        const bson_t *write_error, const bson_t *doc,
                                        bson_t **same_upload, char *index_name,
                                        size_t index_name_size);

/* The stored document with doc's _id when it belongs to doc's order (the
 * field names->order_id); NULL when there is none (*other_order says
 * whether another order holds that _id). False on a read error. */
bool aav_duplicate_find_same_upload(mongoc_collection_t *coll,
                                    const aav_field_names_t *names, const bson_t *doc,
                                    bson_t **stored, bool *other_order,
                                    bson_error_t *error);

#endif
