/* list: an intrusive circular doubly linked list, in the manner of nginx's
 * ngx_queue and libuv's queue.h. The node lives inside the element, so
 * linking and unlinking are O(1) and allocate nothing; a removed node links
 * to itself, so an element can tell whether it is on a list. */
#ifndef GATEWAY_LIST_H
#define GATEWAY_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct list {
    struct list *prev, *next;
};

/* An empty list head, or a node on no list. */
static inline void list_init(struct list *h)
{
    h->prev = h->next = h;
}

static inline bool list_empty(const struct list *h)
{
    return h->next == h;
}

/* True when node n (initialised with list_init) is on a list. */
static inline bool list_linked(const struct list *n)
{
    return n->next != n;
}

static inline void list_insert_head(struct list *h, struct list *n)
{
    n->next = h->next;
    n->prev = h;
    h->next->prev = n;
    h->next = n;
}

static inline void list_insert_tail(struct list *h, struct list *n)
{
    n->prev = h->prev;
    n->next = h;
    h->prev->next = n;
    h->prev = n;
}

/* Unlinks n, which then links to itself; harmless on an unlinked node. */
static inline void list_remove(struct list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    list_init(n);
}

/* Moves every node of from to to (made a head here); from is left empty. */
static inline void list_move_all(struct list *from, struct list *to)
{
    if (list_empty(from)) {
        list_init(to);
        return;
    }
    to->next = from->next;
    to->prev = from->prev;
    to->next->prev = to;
    to->prev->next = to;
    list_init(from);
}

/* The element of type that holds node ptr as its member. */
#define list_entry(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* Visits every node of h; the body must not unlink the current node. */
#define list_foreach(it, h) for ((it) = (h)->next; (it) != (h); (it) = (it)->next)

#endif
