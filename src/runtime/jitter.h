/* Random jitter for retry backoff (xorshift64*): spreads the retries of
 * writers that collided, nothing more; not for secrets. One per environment,
 * used on its main thread only. */
#ifndef JITTER_H
#define JITTER_H

#include <stdint.h>

typedef struct {
  uint64_t state;
} jitter_t;

/* Seeded from the clock, the process id and `salt` (an address will do), so
 * that environments and processes started together do not draw alike. */
void aav_jitter_seed(jitter_t *j, uint64_t salt);
/* Uniform in [0, 1). */
double aav_jitter_random(jitter_t *j);

#endif
