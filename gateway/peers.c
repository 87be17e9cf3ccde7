#include "peers.h"

#include <stdint.h>
#include <string.h>

void peers_init(struct peers *p, unsigned limit)
{
    strmap_init(&p->by_addr);
    p->limit = limit;
}

void peers_free(struct peers *p)
{
    strmap_free(&p->by_addr);
}

bool peers_allowed(const struct peers *p, const char *addr)
{
    return !p->limit || (uintptr_t)strmap_get(&p->by_addr, addr, strlen(addr)) < p->limit;
}

const char *peers_acquire(struct peers *p, const char *addr)
{
    if (!p->limit)
        return NULL;
    size_t len = strlen(addr);
    uintptr_t n = (uintptr_t)strmap_get(&p->by_addr, addr, len);
    return strmap_put(&p->by_addr, addr, len, (void *)(n + 1));
}

void peers_release(struct peers *p, const char *addr)
{
    if (!addr)
        return;
    size_t len = strlen(addr);
    uintptr_t n = (uintptr_t)strmap_get(&p->by_addr, addr, len);
    if (n > 1)
        strmap_put(&p->by_addr, addr, len, (void *)(n - 1));
    else
        strmap_del(&p->by_addr, addr, len);
}
