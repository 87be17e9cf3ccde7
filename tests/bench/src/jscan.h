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
    struct jspan id;        /* a message id, or welcome's connection id */
    struct jspan gateway;   /* welcome */
    struct jspan history;   /* joined: the raw array, brackets included */
    struct jspan truncated; /* joined: true or false */
    struct jspan cid;       /* chat, or an error answering one */
    struct jspan retry_after_ms;
};

/* Returns 0, or -1 when buf does not hold one well-formed JSON object. */
int jscan_message(const char *buf, size_t n, struct jmsg *m);

/* Walks the objects of a JSON array: *pos starts at arr.p (the '['); each
 * call puts the next element in *elem and returns 1, or returns 0 at the
 * end and -1 when the array is malformed. */
int jscan_array_next(struct jspan arr, const char **pos, struct jspan *elem);

/* 1 when span s is exactly the string lit. */
int jspan_is(struct jspan s, const char *lit);

#endif
