#include "backoff.h"

void aav_backoff_rng_seed(backoff_rng_t *rng, uint64_t seed) {
  rng->state = seed;
  if (rng->state == 0) /* xorshift's one fixed point */
    rng->state = 0x9e3779b97f4a7c15ULL;
}

double aav_backoff_random(backoff_rng_t *rng) {
  uint64_t x = rng->state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  rng->state = x;
  return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

uint64_t aav_backoff_ms(int round, double first, double cap, double random01) {
  double window = first;
  for (int i = 1; i < round && window < cap; i++)
    window *= 2;
  if (window > cap)
    window = cap;
  return (uint64_t)(window + random01 * 2 * window);
}

uint64_t aav_backoff_conflict_ms(int round, uint64_t attempt_ms, backoff_rng_t *rng) {
  double first = (double)attempt_ms > BACKOFF_CONFLICT_FIRST_MS
                     ? (double)attempt_ms
                     : BACKOFF_CONFLICT_FIRST_MS;
  double cap = 4 * first > BACKOFF_CONFLICT_CAP_MS ? 4 * first : BACKOFF_CONFLICT_CAP_MS;
  return aav_backoff_ms(round, first, cap, aav_backoff_random(rng));
}

uint64_t aav_backoff_recovery_ms(int round, backoff_rng_t *rng) {
  return aav_backoff_ms(round, BACKOFF_RECOVERY_FIRST_MS, BACKOFF_RECOVERY_CAP_MS,
                        aav_backoff_random(rng));
}
