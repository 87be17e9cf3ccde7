#ifndef CHATBENCH_JSCAN_H
#define CHATBENCH_JSCAN_H

#include <stddef.h>

/* A targeted scan of one JSON object: it walks only the top level and
 * returns where the values of the few keys the benchmark reads are, so a
 * delivery costs one pass over its bytes and no allocation. String values
 * are given raw (escapes untouched, quotes stripped); the benchmark's own
 * content never needs escaping. */

struct jspan {
    const char *p; /* NULL when the key is absent */
    size_t n;
};

struct jmsg {
    struct jspan type;
    struct jspan content;
    struct jspan code;
};

/* Returns 0, or -1 when buf does not hold one well-formed JSON object. */
int jscan_message(const char *buf, size_t n, struct jmsg *m);

/* 1 when span s is exactly the string lit. */
int jspan_is(struct jspan s, const char *lit);

#endif
