#include "shared.h"

#include <stddef.h>
#include <sys/mman.h>

static size_t shared_size(unsigned n, uint32_t rooms)
{
    return sizeof(struct shared) + (size_t)n * sizeof(struct slot) +
           (size_t)rooms * PUBLISHED_WORDS * sizeof(uint64_t);
}

struct shared *shared_create(unsigned n, uint32_t rooms)
{
    /* Anonymous shared memory is inherited by fork and starts zeroed:
     * PH_SETUP and WK_STARTING everywhere. */
    struct shared *s = mmap(NULL, shared_size(n, rooms), PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    if (s == MAP_FAILED)
        return NULL;
    s->workers = n;
    s->rooms = rooms;
    s->published = (_Atomic uint64_t *)(void *)&s->slot[n];
    return s;
}

void shared_destroy(struct shared *s)
{
    if (s)
        munmap(s, shared_size(s->workers, s->rooms));
}
