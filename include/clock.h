/* clock: the gateway's one source of time. Wall-clock time for what others
 * read (frame timestamps, message ids); monotonic time for every duration
 * and deadline, which a clock step must not stretch or cut; the coarse
 * monotonic clock (a few milliseconds behind at most, and cheaper) where a
 * deadline tolerates that, as keepalive does. */
#ifndef GATEWAY_CLOCK_H
#define GATEWAY_CLOCK_H

#include <stdint.h>

/* Milliseconds since the epoch. */
int64_t clock_wall_ms(void);
/* Monotonic milliseconds, microseconds, and coarse milliseconds. */
int64_t clock_mono_ms(void);
int64_t clock_mono_us(void);
int64_t clock_coarse_ms(void);

#endif
