/* How long a batch waits before trying again: the only place that knows.
 * The windows for conflict retries and for recovery reads, and the jitter
 * drawn inside them. Pure arithmetic, no Node-API, no libuv; a backoff_rng_t
 * is used by one thread at a time (its environment's main thread). */
#ifndef BACKOFF_H
#define BACKOFF_H

#include <stdint.h>

/* A batch that lost to a concurrent writer: the first window, and its cap. */
#define BACKOFF_CONFLICT_FIRST_MS 5.0
#define BACKOFF_CONFLICT_CAP_MS 200.0
/* A batch whose look by _id (recovery) failed. */
#define BACKOFF_RECOVERY_FIRST_MS 50.0
#define BACKOFF_RECOVERY_CAP_MS 1000.0

/* Random jitter (xorshift64*): spreads the retries of writers that collided,
 * nothing more; not for secrets. */
typedef struct {
  uint64_t state;
} backoff_rng_t;

/* `seed` should differ between environments and processes started together
 * (the caller mixes the clock, the process id and an address). */
void aav_backoff_rng_seed(backoff_rng_t *rng, uint64_t seed);
/* Uniform in [0, 1). */
double aav_backoff_random(backoff_rng_t *rng);

/* Round 1, 2, 3 … waits a jittered time from a window that starts at
 * `first` ms and doubles each round up to `cap`: window + random01 * 2 *
 * window, so with first = 5 the first wait is 5–15 ms, as the reference
 * design waits, then 10–30, 20–60 … Writers that collided drift apart.
 * random01 is uniform in [0, 1). */
uint64_t aav_backoff_ms(int round, double first, double cap, double random01);

/* After `round` lost conflicts. The writer we lost to is as slow as we are:
 * wait about one attempt of ours (`attempt_ms`) at least, or we meet its next
 * chunk at the same version again. */
uint64_t aav_backoff_conflict_ms(int round, uint64_t attempt_ms, backoff_rng_t *rng);
/* After `round` failed recovery reads. */
uint64_t aav_backoff_recovery_ms(int round, backoff_rng_t *rng);

#endif
