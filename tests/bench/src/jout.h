#ifndef CHATBENCH_JOUT_H
#define CHATBENCH_JOUT_H

#include <stdint.h>
#include <stdio.h>

/* Writes one JSON object on one line, keeping track of commas. */

#define JOUT_DEPTH 8

struct jout {
    FILE *f;
    int depth;
    int first[JOUT_DEPTH];
};

void jo_begin(struct jout *j, FILE *f);       /* { */
void jo_end(struct jout *j);                  /* } (and a newline at the top) */
void jo_obj(struct jout *j, const char *key); /* "key":{ */
void jo_int(struct jout *j, const char *key, int64_t v);
void jo_num(struct jout *j, const char *key, double v); /* NaN: null */
void jo_str(struct jout *j, const char *key, const char *v);
void jo_bool(struct jout *j, const char *key, int v);

#endif
