/* Tests of the C core alone (no Node, no Node-API): validation, document
 * building, the backoff schedule, and write attempts against a real server,
 * including threads that race for the same order. One scenario per function,
 * listed in TESTS at the bottom. Built and run by test/core-c.test.js in
 * every `npm test`, and under valgrind by scripts/memcheck.sh.
 *
 *   core_test                       the scenarios that need no server
 *   core_test mongodb://…           all of them, against that server
 *   core_test mongodb://… NAME      one of them
 */
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/asset_doc.h"
#include "core/attempt.h"
#include "core/backoff.h"
#include "core/version_index.h"

static int passed, failed;

#define CHECK(cond)                                                                      \
  do {                                                                                   \
    if (cond) {                                                                          \
      passed++;                                                                          \
    } else {                                                                             \
      failed++;                                                                          \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);           \
    }                                                                                    \
  } while (0)

/* ---- validation and documents ------------------------------------------- */

static bool sound_json(const char *json, asset_problem_t *p) {
  bson_error_t error;
  bson_t *doc = bson_new_from_json((const uint8_t *)json, -1, &error);
  if (!doc) {
    fprintf(stderr, "bad test JSON %s: %s\n", json, error.message);
    return false;
  }
  bool ok = aav_asset_check_structure(bson_get_data(doc), doc->len, p);
  bson_destroy(doc);
  return ok;
}

/* Only structure is the C core's to check; what an asset must hold is
 * lib/asset_input.js's (test/validation.test.js). */
static void test_validation(const char *uri) {
  (void)uri;
  asset_problem_t p;
  CHECK(sound_json("{\"orderId\": \"o\", \"fileName\": \"a.pdf\", \"fileSize\": 3}", &p));
  CHECK(sound_json("{\"anything\": {\"$set\": [1, 2]}}", &p));

  /* 101 levels of nesting, built by hand: JSON parsers recurse too. */
  bson_t *levels[102];
  levels[0] = bson_new();
  BSON_APPEND_UTF8(levels[0], "orderId", "o");
  BSON_APPEND_UTF8(levels[0], "fileName", "a");
  for (int i = 1; i < 102; i++) {
    levels[i] = bson_new();
    BSON_APPEND_INT32(levels[i], "leaf", i);
  }
  for (int i = 101; i > 0; i--)
    BSON_APPEND_DOCUMENT(i == 1 ? levels[0] : levels[i - 1], "n", levels[i]);
  CHECK(!aav_asset_check_structure(bson_get_data(levels[0]), levels[0]->len, &p));
  CHECK(strcmp(p.code, "ERR_ASSET_TOO_DEEP") == 0);
  for (int i = 0; i < 102; i++)
    bson_destroy(levels[i]);

  /* Garbage of every short length, and a valid document cut short. */
  uint8_t junk[64];
  for (size_t i = 0; i < sizeof junk; i++)
    junk[i] = (uint8_t)(i * 37 + 11);
  for (size_t len = 0; len < sizeof junk; len++)
    CHECK(!aav_asset_check_structure(junk, len, &p));
  bson_t *ok_doc =
      BCON_NEW("orderId", "o", "fileName", "a", "meta", "{", "k", BCON_INT32(1), "}");
  CHECK(!aav_asset_check_structure(bson_get_data(ok_doc), ok_doc->len - 3, &p));
  CHECK(!aav_asset_check_structure(NULL, 0, &p));
  bson_destroy(ok_doc);
}

static void test_documents(const char *uri) {
  (void)uri;
  asset_problem_t p;
  bool generated;
  bson_t *in = BCON_NEW("orderId", "o", "fileName", "a.pdf", "version", BCON_INT32(99),
                        "versionLabel", "v99");
  bson_t *prepared = aav_asset_prepare(bson_get_data(in), in->len, &generated, &p);
  CHECK(prepared != NULL && generated);
  bson_iter_t it;
  CHECK(bson_iter_init(&it, prepared) && bson_iter_next(&it) &&
        strcmp(bson_iter_key(&it), "_id") == 0 && BSON_ITER_HOLDS_OID(&it));

  bson_t *stored = aav_asset_build_stored(prepared, 3000000000LL, 1700000000000LL, NULL);
  CHECK(bson_iter_init_find(&it, stored, "version") && BSON_ITER_HOLDS_INT64(&it) &&
        bson_iter_int64(&it) == 3000000000LL);
  CHECK(bson_iter_init_find(&it, stored, "versionLabel") &&
        strcmp(bson_iter_utf8(&it, NULL), "v3000000000") == 0);
  CHECK(bson_iter_init_find(&it, stored, "createdAt") && BSON_ITER_HOLDS_DATE_TIME(&it));
  CHECK(bson_count_keys(stored) == 7); /* _id orderId fileName + 4 of ours */
  bson_destroy(stored);
  stored = aav_asset_build_stored(prepared, 2, 0, NULL);
  CHECK(bson_iter_init_find(&it, stored, "version") && BSON_ITER_HOLDS_INT32(&it));
  bson_destroy(stored);

  bson_t *with_id = BCON_NEW("_id", BCON_INT32(7), "orderId", "o", "fileName", "a");
  bson_t *kept = aav_asset_prepare(bson_get_data(with_id), with_id->len, &generated, &p);
  CHECK(kept != NULL && !generated);
  CHECK(bson_iter_init_find(&it, kept, "_id") && bson_iter_int32(&it) == 7);
  bson_destroy(kept);
  bson_destroy(with_id);
  bson_destroy(prepared);
  bson_destroy(in);
}

static void test_shard_keys(const char *uri) {
  (void)uri;
  const char *ok[] = {"{\"orderId\": 1}", "{\"orderId\": 1, \"version\": 1}"};
  const char *bad[] = {
      "{\"orderId\": \"hashed\"}",         "{\"version\": 1}",  "{}",
      "{\"orderId\": 1, \"fileName\": 1}", "{\"orderId\": -1}", "{\"_id\": 1}"};
  bson_error_t error;
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    bson_t *key = bson_new_from_json((const uint8_t *)ok[i], -1, &error);
    CHECK(key && aav_version_index_shard_key_ok(key, NULL));
    bson_destroy(key);
  }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    bson_t *key = bson_new_from_json((const uint8_t *)bad[i], -1, &error);
    CHECK(key && !aav_version_index_shard_key_ok(key, NULL));
    bson_destroy(key);
  }
}

/* ---- against a server ---------------------------------------------------- */

typedef struct {
  mongoc_client_pool_t *pool;
  const char *db;
  const char *coll;
  const char *order;
  int uploads;
  int stored;
  int conflicts;
} racer_t;

static void free_items(pending_asset_t *items, size_t n) {
  for (size_t i = 0; i < n; i++) {
    bson_destroy(items[i].prepared);
    bson_destroy(items[i].stored);
  }
}

static pending_asset_t make_item(const char *order, int i) {
  asset_problem_t p;
  pending_asset_t item = {0};
  char name[32];
  snprintf(name, sizeof name, "f-%d.pdf", i);
  bson_t *in = BCON_NEW("orderId", order, "fileName", name);
  bool id_generated;
  item.prepared = aav_asset_prepare(bson_get_data(in), in->len, &id_generated, &p);
  bson_destroy(in);
  return item;
}

/* One upload at a time, retrying conflicts at once: the harshest contention. */
static void *race(void *arg) {
  racer_t *r = arg;
  mongoc_client_t *client = mongoc_client_pool_pop(r->pool);
  mongoc_collection_t *coll = mongoc_client_get_collection(client, r->db, r->coll);
  attempt_config_t config = {VERSION_INDEX_NAME, NULL, NULL, NULL};
  for (int i = 0; i < r->uploads; i++) {
    pending_asset_t item = make_item(r->order, i);
    pending_asset_t *items[1] = {&item};
    for (int tries = 0; tries < 1000; tries++) {
      attempt_result_t result;
      aav_attempt_run(coll, &config, items, 1, &result);
      if (result.outcome == ATTEMPT_DONE) {
        r->stored++;
        break;
      }
      if (result.outcome != ATTEMPT_CONFLICT) {
        fprintf(stderr, "race: unexpected outcome %d: %s\n", result.outcome,
                result.error.message);
        break;
      }
      r->conflicts++;
    }
    free_items(&item, 1);
  }
  mongoc_collection_destroy(coll);
  mongoc_client_pool_push(r->pool, client);
  return NULL;
}

static int64_t count_docs(mongoc_collection_t *coll, const char *order) {
  bson_t *filter = BCON_NEW("orderId", order);
  bson_error_t error;
  int64_t n = mongoc_collection_count_documents(coll, filter, NULL, NULL, NULL, &error);
  bson_destroy(filter);
  return n;
}

/* A collection of its own for one scenario, with the version index. */
typedef struct {
  mongoc_uri_t *uri;
  mongoc_client_pool_t *pool;
  mongoc_client_t *client;
  mongoc_collection_t *coll;
  char db[64];
} fixture_t;

static bool fixture_open(fixture_t *f, const char *uri_string, const char *name) {
  bson_error_t error;
  memset(f, 0, sizeof *f);
  f->uri = mongoc_uri_new_with_error(uri_string, &error);
  CHECK(f->uri != NULL);
  if (!f->uri)
    return false;
  f->pool = mongoc_client_pool_new(f->uri);
  mongoc_client_pool_set_error_api(f->pool, MONGOC_ERROR_API_VERSION_2);
  snprintf(f->db, sizeof f->db, "aav_c_%d_%s", (int)getpid(), name);
  f->client = mongoc_client_pool_pop(f->pool);
  f->coll = mongoc_client_get_collection(f->client, f->db, "assets");
  char index[128];
  bool ok = aav_version_index_ensure(f->client, f->db, f->coll, NULL, index, sizeof index,
                                     &error);
  CHECK(ok);
  return ok;
}

static void fixture_close(fixture_t *f) {
  bson_error_t error;
  mongoc_database_t *database = mongoc_client_get_database(f->client, f->db);
  mongoc_database_drop(database, &error);
  mongoc_database_destroy(database);
  mongoc_collection_destroy(f->coll);
  mongoc_client_pool_push(f->pool, f->client);
  mongoc_client_pool_destroy(f->pool);
  mongoc_uri_destroy(f->uri);
}

static const attempt_config_t CONFIG = {VERSION_INDEX_NAME, NULL, NULL, NULL};

static int64_t highest_of(mongoc_collection_t *coll, const char *order) {
  bson_error_t error;
  int64_t highest = -1;
  bson_t *filter = BCON_NEW("orderId", order);
  CHECK(aav_attempt_read_highest(coll, filter, NULL, &highest, &error));
  bson_destroy(filter);
  return highest;
}

static void test_version_index_is_reused(const char *uri) {
  fixture_t f;
  if (!fixture_open(&f, uri, "index"))
    return;
  char name[128];
  bson_error_t error;
  CHECK(
      aav_version_index_ensure(f.client, f.db, f.coll, NULL, name, sizeof name, &error));
  CHECK(strcmp(name, VERSION_INDEX_NAME) == 0);
  fixture_close(&f);
}

static void test_batch_takes_consecutive_versions(const char *uri) {
  fixture_t f;
  if (!fixture_open(&f, uri, "batch"))
    return;
  attempt_result_t result;
  pending_asset_t batch[3] = {make_item("c1", 0), make_item("c1", 1), make_item("c1", 2)};
  pending_asset_t *items[3] = {&batch[0], &batch[1], &batch[2]};
  aav_attempt_run(f.coll, &CONFIG, items, 3, &result);
  CHECK(result.outcome == ATTEMPT_DONE && result.committed == 3);
  CHECK(batch[0].version == 1 && batch[2].version == 3);
  CHECK(highest_of(f.coll, "c1") == 3);
  free_items(batch, 3);
  fixture_close(&f);
}

static void test_same_upload_is_found_not_stored_again(const char *uri) {
  fixture_t f;
  if (!fixture_open(&f, uri, "same"))
    return;
  attempt_result_t result;
  pending_asset_t item = make_item("s", 0);
  pending_asset_t *items[1] = {&item};
  aav_attempt_run(f.coll, &CONFIG, items, 1, &result);
  CHECK(result.outcome == ATTEMPT_DONE && item.version == 1);
  aav_attempt_run(f.coll, &CONFIG, items, 1, &result);
  CHECK(result.outcome == ATTEMPT_ITEM_FOUND && item.version == 1);
  CHECK(highest_of(f.coll, "s") == 1);
  free_items(&item, 1);
  fixture_close(&f);
}

static void test_recovery_finds_a_lost_insert(const char *uri) {
  fixture_t f;
  if (!fixture_open(&f, uri, "recover"))
    return;
  attempt_result_t result;
  bson_error_t error;
  pending_asset_t stored = make_item("r", 0), never = make_item("r", 1);
  pending_asset_t *first[1] = {&stored}, *both[2] = {&stored, &never};
  aav_attempt_run(f.coll, &CONFIG, first, 1, &result);
  stored.version = 0; /* as if its reply was lost */
  bool unconfirmed = true;
  CHECK(aav_attempt_recover(f.coll, &CONFIG, both, 2, &unconfirmed, &error));
  CHECK(stored.found && stored.version == 1 && !never.found && !unconfirmed);
  free_items(&stored, 1);
  free_items(&never, 1);
  fixture_close(&f);
}

static void test_holes_are_never_filled(const char *uri) {
  fixture_t f;
  if (!fixture_open(&f, uri, "holes"))
    return;
  attempt_result_t result;
  bson_error_t error;
  for (int v = 2; v <= 5; v++) {
    bson_t *doc = BCON_NEW("orderId", "h", "version", BCON_INT32(v));
    CHECK(mongoc_collection_insert_one(f.coll, doc, NULL, NULL, &error));
    bson_destroy(doc);
  }
  pending_asset_t item = make_item("h", 0);
  pending_asset_t *items[1] = {&item};
  aav_attempt_run(f.coll, &CONFIG, items, 1, &result);
  CHECK(result.outcome == ATTEMPT_DONE && item.version == 6);
  free_items(&item, 1);
  fixture_close(&f);
}

static void test_legacy_string_version_is_ignored(const char *uri) {
  fixture_t f;
  if (!fixture_open(&f, uri, "legacy"))
    return;
  bson_error_t error;
  bson_t *legacy = BCON_NEW("orderId", "l", "version", "v9");
  CHECK(mongoc_collection_insert_one(f.coll, legacy, NULL, NULL, &error));
  bson_destroy(legacy);
  CHECK(highest_of(f.coll, "l") == 0);
  fixture_close(&f);
}

static void test_many_orders_in_one_attempt(const char *uri) {
  fixture_t f;
  if (!fixture_open(&f, uri, "many"))
    return;
  attempt_result_t result;
  bson_error_t error;
  bson_t *existing = BCON_NEW("orderId", "m2", "version", BCON_INT32(7));
  CHECK(mongoc_collection_insert_one(f.coll, existing, NULL, NULL, &error));
  bson_destroy(existing);
  /* Each order's items together, in call order: m1 new, m2 at 7, m3 new. */
  pending_asset_t batch[5] = {make_item("m1", 0), make_item("m1", 1), make_item("m2", 0),
                              make_item("m3", 0), make_item("m3", 1)};
  pending_asset_t *items[5] = {&batch[0], &batch[1], &batch[2], &batch[3], &batch[4]};
  atomic_int tops_by_find = 0;
  attempt_config_t config = {VERSION_INDEX_NAME, NULL, &tops_by_find, NULL};
  aav_attempt_run(f.coll, &config, items, 5, &result);
  CHECK(result.outcome == ATTEMPT_DONE && result.committed == 5);
  CHECK(batch[0].version == 1 && batch[1].version == 2);
  CHECK(batch[2].version == 8);
  CHECK(batch[3].version == 1 && batch[4].version == 2);
  free_items(batch, 5);
  fixture_close(&f);
}

static void test_threads_racing_for_one_order(const char *uri) {
  fixture_t f;
  if (!fixture_open(&f, uri, "race"))
    return;
  /* Four threads, one order, one upload per attempt: every conflict is real. */
  enum { THREADS = 4, EACH = 15 };
  pthread_t threads[THREADS];
  racer_t racers[THREADS];
  for (int i = 0; i < THREADS; i++) {
    racers[i] = (racer_t){f.pool, f.db, "assets", "c-race", EACH, 0, 0};
    pthread_create(&threads[i], NULL, race, &racers[i]);
  }
  int stored = 0;
  for (int i = 0; i < THREADS; i++) {
    pthread_join(threads[i], NULL);
    stored += racers[i].stored;
  }
  CHECK(stored == THREADS * EACH);
  CHECK(count_docs(f.coll, "c-race") == THREADS * EACH);
  CHECK(highest_of(f.coll, "c-race") == THREADS * EACH);
  fixture_close(&f);
}

static void test_backoff_schedule(const char *uri) {
  (void)uri;
  /* As the reference design: 5–15 ms first, then windows that double. */
  CHECK(aav_backoff_ms(1, 5, 200, 0.0) == 5 && aav_backoff_ms(1, 5, 200, 0.999) == 14);
  CHECK(aav_backoff_ms(2, 5, 200, 0.0) == 10 && aav_backoff_ms(3, 5, 200, 0.5) == 40);
  /* Capped: the window stops at the cap, the jitter stays. */
  CHECK(aav_backoff_ms(30, 5, 200, 0.0) == 200 &&
        aav_backoff_ms(30, 5, 200, 0.999) < 600);
  /* Never less than the first window, whatever the round. */
  for (int round = 0; round < 40; round++)
    CHECK(aav_backoff_ms(round, 50, 1000, 0.0) >= 50);
  /* The two schedules the batch uses, with the jitter drawn inside them. */
  backoff_rng_t rng;
  aav_backoff_rng_seed(&rng, 0); /* the fixed point is replaced */
  CHECK(rng.state != 0);
  for (int i = 0; i < 1000; i++) {
    double r = aav_backoff_random(&rng);
    CHECK(r >= 0 && r < 1);
  }
  for (int i = 0; i < 100; i++) {
    uint64_t first = aav_backoff_conflict_ms(1, 0, &rng);
    CHECK(first >= BACKOFF_CONFLICT_FIRST_MS && first < 3 * BACKOFF_CONFLICT_FIRST_MS);
    /* A slow attempt (100 ms): wait about one attempt at least. */
    uint64_t slow = aav_backoff_conflict_ms(1, 100, &rng);
    CHECK(slow >= 100 && slow < 300);
    uint64_t capped = aav_backoff_conflict_ms(30, 100, &rng); /* cap 4 * 100 */
    CHECK(capped >= 400 && capped < 1200);
    uint64_t look = aav_backoff_recovery_ms(1, &rng);
    CHECK(look >= BACKOFF_RECOVERY_FIRST_MS && look < 3 * BACKOFF_RECOVERY_FIRST_MS);
    CHECK(aav_backoff_recovery_ms(30, &rng) >= BACKOFF_RECOVERY_CAP_MS);
  }
}

static void quiet_log(mongoc_log_level_t level, const char *domain, const char *message,
                      void *data) {
  (void)data;
  if (level <= MONGOC_LOG_LEVEL_CRITICAL)
    mongoc_log_default_handler(level, domain, message, NULL);
}

typedef struct {
  const char *name;
  void (*run)(const char *uri);
  bool needs_server;
} test_entry_t;

static const test_entry_t TESTS[] = {
    {"validation", test_validation, false},
    {"documents", test_documents, false},
    {"shard_keys", test_shard_keys, false},
    {"backoff_schedule", test_backoff_schedule, false},
    {"version_index_is_reused", test_version_index_is_reused, true},
    {"batch_takes_consecutive_versions", test_batch_takes_consecutive_versions, true},
    {"same_upload_is_found_not_stored_again", test_same_upload_is_found_not_stored_again,
     true},
    {"recovery_finds_a_lost_insert", test_recovery_finds_a_lost_insert, true},
    {"holes_are_never_filled", test_holes_are_never_filled, true},
    {"legacy_string_version_is_ignored", test_legacy_string_version_is_ignored, true},
    {"many_orders_in_one_attempt", test_many_orders_in_one_attempt, true},
    {"threads_racing_for_one_order", test_threads_racing_for_one_order, true},
};

int main(int argc, char **argv) {
  const char *uri = argc > 1 ? argv[1] : NULL;
  const char *only = argc > 2 ? argv[2] : NULL;
  int tests_passed = 0, tests_failed = 0, skipped = 0;
  mongoc_init();
  /* FerretDB has no endSessions; the driver warns about it at pool teardown. */
  mongoc_log_set_handler(quiet_log, NULL);
  for (size_t i = 0; i < sizeof TESTS / sizeof TESTS[0]; i++) {
    const test_entry_t *t = &TESTS[i];
    if (only && strcmp(only, t->name) != 0)
      continue;
    if (t->needs_server && !uri) {
      printf("skip %s (needs a server)\n", t->name);
      skipped++;
      continue;
    }
    int before = failed;
    t->run(uri);
    bool ok = failed == before;
    printf("%s %s\n", ok ? "ok" : "FAIL", t->name);
    if (ok)
      tests_passed++;
    else
      tests_failed++;
  }
  mongoc_cleanup();
  printf("%d checks passed, %d failed\n", passed, failed);
  printf("%d passed, %d failed, %d skipped\n", tests_passed, tests_failed, skipped);
  return tests_failed == 0 && (only == NULL || tests_passed == 1) ? 0 : 1;
}
