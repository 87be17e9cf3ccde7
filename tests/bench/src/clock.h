#ifndef CHATBENCH_CLOCK_H
#define CHATBENCH_CLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC is one clock for every process on the machine, so a send
 * time stamped by one worker can be compared with a receive time taken by
 * another worker. */
static inline int64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The kernel stamps received segments with CLOCK_REALTIME. */
static inline int64_t now_real_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

#endif
