#include "shared.h"

#include <stddef.h>
#include <sys/mman.h>

static size_t shared_size(unsigned n)
{
    return sizeof(struct shared) + (size_t)n * sizeof(struct slot);
}

struct shared *shared_create(unsigned n)
{
    /* Anonymous shared memory is inherited by fork and starts zeroed:
     * PH_SETUP and WK_STARTING everywhere. */
    struct shared *s =
        mmap(NULL, shared_size(n), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    if (s == MAP_FAILED)
        return NULL;
    s->workers = n;
    return s;
}

void shared_destroy(struct shared *s)
{
    if (s)
        munmap(s, shared_size(s->workers));
}
