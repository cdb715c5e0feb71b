/* Tests of the C core alone (no Node, no Node-API): validation, document
 * building, and write attempts against a real server, including threads that
 * race for the same order. Run by test/core-c.test.js, under valgrind when
 * it is installed.
 *
 *   core_test                 validation and documents only
 *   core_test mongodb://…     also against that server
 */
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/asset_doc.h"
#include "core/attempt.h"
#include "core/version_index.h"

static int passed, failed;

#define CHECK(cond)                                                                 \
  do {                                                                              \
    if (cond) {                                                                     \
      passed++;                                                                     \
    } else {                                                                        \
      failed++;                                                                     \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);      \
    }                                                                               \
  } while (0)

/* ---- validation and documents ------------------------------------------- */

static bool valid_json(const char *json, asset_problem_t *p) {
  bson_error_t error;
  bson_t *doc = bson_new_from_json((const uint8_t *)json, -1, &error);
  if (!doc) {
    fprintf(stderr, "bad test JSON %s: %s\n", json, error.message);
    return false;
  }
  bool ok = asset_validate(bson_get_data(doc), doc->len, p);
  bson_destroy(doc);
  return ok;
}

static void expect_problem(const char *json, const char *code, const char *field) {
  asset_problem_t p;
  bool ok = valid_json(json, &p);
  CHECK(!ok);
  if (!ok) {
    CHECK(strcmp(p.code, code) == 0);
    CHECK(strcmp(p.field, field) == 0);
    CHECK(strstr(p.message, field) != NULL);
  }
}

static void test_validation(void) {
  asset_problem_t p;
  CHECK(valid_json("{\"orderId\": \"o\", \"fileName\": \"a.pdf\", \"fileSize\": 3}", &p));
  CHECK(valid_json("{\"orderId\": {\"$oid\": \"65a1b2c3d4e5f60718293a4b\"}, \"fileName\": \"a\"}", &p));
  expect_problem("{\"fileName\": \"a\"}", "ERR_ASSET_ORDER_ID", "orderId");
  expect_problem("{\"orderId\": {\"$ne\": null}, \"fileName\": \"a\"}", "ERR_ASSET_ORDER_ID", "orderId");
  expect_problem("{\"orderId\": \"  \", \"fileName\": \"a\"}", "ERR_ASSET_ORDER_ID", "orderId");
  expect_problem("{\"orderId\": \"o\"}", "ERR_ASSET_FILE_NAME", "fileName");
  expect_problem("{\"orderId\": \"o\", \"fileName\": \"a\", \"fileSize\": -1}", "ERR_ASSET_FILE_SIZE", "fileSize");
  expect_problem("{\"orderId\": \"o\", \"fileName\": \"a\", \"fileSize\": 1.5}", "ERR_ASSET_FILE_SIZE", "fileSize");
  expect_problem("{\"orderId\": \"o\", \"fileName\": \"a\", \"m\": {\"x\": [{\"$set\": 1}]}}", "ERR_ASSET_KEY", "m.x.0.$set");
  expect_problem("{\"orderId\": \"o\", \"fileName\": \"a\", \"a.b\": 1}", "ERR_ASSET_KEY", "a.b");

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
  CHECK(!asset_validate(bson_get_data(levels[0]), levels[0]->len, &p));
  CHECK(strcmp(p.code, "ERR_ASSET_TOO_DEEP") == 0);
  for (int i = 0; i < 102; i++)
    bson_destroy(levels[i]);

  /* Garbage of every short length, and a valid document cut short. */
  uint8_t junk[64];
  for (size_t i = 0; i < sizeof junk; i++)
    junk[i] = (uint8_t)(i * 37 + 11);
  for (size_t len = 0; len < sizeof junk; len++)
    CHECK(!asset_validate(junk, len, &p));
  bson_t *ok_doc = BCON_NEW("orderId", "o", "fileName", "a", "meta", "{", "k", BCON_INT32(1), "}");
  CHECK(!asset_validate(bson_get_data(ok_doc), ok_doc->len - 3, &p));
  CHECK(!asset_validate(NULL, 0, &p));
  bson_destroy(ok_doc);
}

static void test_documents(void) {
  asset_problem_t p;
  bool generated;
  bson_t *in = BCON_NEW("orderId", "o", "fileName", "a.pdf", "version", BCON_INT32(99),
                        "versionLabel", "v99");
  bson_t *prepared = asset_prepare(bson_get_data(in), in->len, &generated, &p);
  CHECK(prepared != NULL && generated);
  bson_iter_t it;
  CHECK(bson_iter_init(&it, prepared) && bson_iter_next(&it) &&
        strcmp(bson_iter_key(&it), "_id") == 0 && BSON_ITER_HOLDS_OID(&it));

  bson_t *stored = asset_build_stored(prepared, 3000000000LL, 1700000000000LL);
  CHECK(bson_iter_init_find(&it, stored, "version") && BSON_ITER_HOLDS_INT64(&it) &&
        bson_iter_int64(&it) == 3000000000LL);
  CHECK(bson_iter_init_find(&it, stored, "versionLabel") &&
        strcmp(bson_iter_utf8(&it, NULL), "v3000000000") == 0);
  CHECK(bson_iter_init_find(&it, stored, "createdAt") && BSON_ITER_HOLDS_DATE_TIME(&it));
  CHECK(bson_count_keys(stored) == 7); /* _id orderId fileName + 4 of ours */
  bson_destroy(stored);
  stored = asset_build_stored(prepared, 2, 0);
  CHECK(bson_iter_init_find(&it, stored, "version") && BSON_ITER_HOLDS_INT32(&it));
  bson_destroy(stored);

  bson_t *with_id = BCON_NEW("_id", BCON_INT32(7), "orderId", "o", "fileName", "a");
  bson_t *kept = asset_prepare(bson_get_data(with_id), with_id->len, &generated, &p);
  CHECK(kept != NULL && !generated);
  CHECK(bson_iter_init_find(&it, kept, "_id") && bson_iter_int32(&it) == 7);
  bson_destroy(kept);
  bson_destroy(with_id);
  bson_destroy(prepared);
  bson_destroy(in);
}

static void test_shard_keys(void) {
  const char *ok[] = {"{\"orderId\": 1}", "{\"orderId\": 1, \"version\": 1}"};
  const char *bad[] = {"{\"orderId\": \"hashed\"}", "{\"version\": 1}", "{}",
                       "{\"orderId\": 1, \"fileName\": 1}", "{\"orderId\": -1}",
                       "{\"_id\": 1}"};
  bson_error_t error;
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    bson_t *key = bson_new_from_json((const uint8_t *)ok[i], -1, &error);
    CHECK(key && version_index_shard_key_ok(key));
    bson_destroy(key);
  }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    bson_t *key = bson_new_from_json((const uint8_t *)bad[i], -1, &error);
    CHECK(key && !version_index_shard_key_ok(key));
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
  item.prepared = asset_prepare(bson_get_data(in), in->len, &id_generated, &p);
  bson_destroy(in);
  return item;
}

/* One upload at a time, retrying conflicts at once: the harshest contention. */
static void *race(void *arg) {
  racer_t *r = arg;
  mongoc_client_t *client = mongoc_client_pool_pop(r->pool);
  mongoc_collection_t *coll = mongoc_client_get_collection(client, r->db, r->coll);
  attempt_config_t config = {VERSION_INDEX_NAME, NULL, NULL};
  for (int i = 0; i < r->uploads; i++) {
    pending_asset_t item = make_item(r->order, i);
    pending_asset_t *items[1] = {&item};
    for (int tries = 0; tries < 1000; tries++) {
      attempt_result_t result;
      attempt_run(coll, &config, items, 1, &result);
      if (result.outcome == ATTEMPT_DONE) {
        r->stored++;
        break;
      }
      if (result.outcome != ATTEMPT_CONFLICT) {
        fprintf(stderr, "race: unexpected outcome %d: %s\n", result.outcome, result.error.message);
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

static void test_server(const char *uri_string) {
  bson_error_t error;
  mongoc_uri_t *uri = mongoc_uri_new_with_error(uri_string, &error);
  CHECK(uri != NULL);
  if (!uri)
    return;
  mongoc_client_pool_t *pool = mongoc_client_pool_new(uri);
  mongoc_client_pool_set_error_api(pool, MONGOC_ERROR_API_VERSION_2);
  char db[64];
  snprintf(db, sizeof db, "aav_core_c_%d", (int)getpid());
  mongoc_client_t *client = mongoc_client_pool_pop(pool);
  mongoc_collection_t *coll = mongoc_client_get_collection(client, db, "assets");
  char name[128];

  CHECK(version_index_ensure(client, db, coll, name, sizeof name, &error));
  CHECK(strcmp(name, VERSION_INDEX_NAME) == 0);
  CHECK(version_index_ensure(client, db, coll, name, sizeof name, &error)); /* idempotent */

  attempt_config_t config = {VERSION_INDEX_NAME, NULL, NULL};
  attempt_result_t result;
  pending_asset_t batch[3] = {make_item("c1", 0), make_item("c1", 1), make_item("c1", 2)};
  pending_asset_t *batch_items[3] = {&batch[0], &batch[1], &batch[2]};
  attempt_run(coll, &config, batch_items, 3, &result);
  CHECK(result.outcome == ATTEMPT_DONE && result.committed == 3);
  CHECK(batch[0].version == 1 && batch[2].version == 3);

  pending_asset_t late = make_item("c1", 3);
  pending_asset_t *late_items[1] = {&late};
  attempt_run(coll, &config, late_items, 1, &result);
  CHECK(result.outcome == ATTEMPT_DONE && late.version == 4);

  /* The same upload again (same _id) is recognised as already stored. */
  attempt_run(coll, &config, late_items, 1, &result);
  CHECK(result.outcome == ATTEMPT_ITEM_FOUND && late.version == 4);

  /* A lost reply: recovery finds the stored upload by its _id. */
  late.version = 0;
  bool unconfirmed = true;
  CHECK(attempt_recover(coll, &config, late_items, 1, &unconfirmed, &error));
  CHECK(late.found && late.version == 4 && !unconfirmed);
  free_items(&late, 1);
  free_items(batch, 3);

  /* A hole below the top is never filled, and a legacy string version is
   * ignored when finding the top. */
  bson_t *hole = BCON_NEW("orderId", "c1", "version", BCON_INT32(2));
  CHECK(mongoc_collection_delete_one(coll, hole, NULL, NULL, &error));
  bson_destroy(hole);
  bson_t *legacy = BCON_NEW("orderId", "c1", "version", "v9");
  CHECK(mongoc_collection_insert_one(coll, legacy, NULL, NULL, &error));
  bson_destroy(legacy);
  pending_asset_t next = make_item("c1", 4);
  pending_asset_t *next_items[1] = {&next};
  attempt_run(coll, &config, next_items, 1, &result);
  CHECK(result.outcome == ATTEMPT_DONE && next.version == 5);
  free_items(&next, 1);
  bson_t *legacy_filter = BCON_NEW("version", "v9");
  CHECK(mongoc_collection_delete_one(coll, legacy_filter, NULL, NULL, &error));
  bson_destroy(legacy_filter);

  int64_t highest = -1;
  bson_t *filter = BCON_NEW("orderId", "c1");
  CHECK(attempt_read_highest(coll, filter, &highest, &error) && highest == 5);
  bson_destroy(filter);

  /* Four threads, one order, no coalescing: every conflict is real. */
  enum { THREADS = 4, EACH = 15 };
  pthread_t threads[THREADS];
  racer_t racers[THREADS];
  for (int i = 0; i < THREADS; i++) {
    racers[i] = (racer_t){pool, db, "assets", "c-race", EACH, 0, 0};
    pthread_create(&threads[i], NULL, race, &racers[i]);
  }
  int stored = 0;
  for (int i = 0; i < THREADS; i++) {
    pthread_join(threads[i], NULL);
    stored += racers[i].stored;
  }
  CHECK(stored == THREADS * EACH);
  CHECK(count_docs(coll, "c-race") == THREADS * EACH);
  filter = BCON_NEW("orderId", "c-race");
  CHECK(attempt_read_highest(coll, filter, &highest, &error) && highest == THREADS * EACH);
  bson_destroy(filter);

  mongoc_database_t *database = mongoc_client_get_database(client, db);
  mongoc_database_drop(database, &error);
  mongoc_database_destroy(database);
  mongoc_collection_destroy(coll);
  mongoc_client_pool_push(pool, client);
  mongoc_client_pool_destroy(pool);
  mongoc_uri_destroy(uri);
}

static void quiet_log(mongoc_log_level_t level, const char *domain, const char *message,
                      void *data) {
  (void)data;
  if (level <= MONGOC_LOG_LEVEL_CRITICAL)
    mongoc_log_default_handler(level, domain, message, NULL);
}

int main(int argc, char **argv) {
  mongoc_init();
  /* FerretDB has no endSessions; the driver warns about it at pool teardown. */
  mongoc_log_set_handler(quiet_log, NULL);
  test_validation();
  test_documents();
  test_shard_keys();
  if (argc > 1)
    test_server(argv[1]);
  mongoc_cleanup();
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
