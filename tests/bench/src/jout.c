#include "jout.h"

#include <inttypes.h>
#include <math.h>

static void key(struct jout *j, const char *k)
{
    if (!j->first[j->depth])
        fputc(',', j->f);
    j->first[j->depth] = 0;
    fprintf(j->f, "\"%s\":", k);
}

static void open_obj(struct jout *j)
{
    fputc('{', j->f);
    if (j->depth < JOUT_DEPTH - 1)
        j->depth++;
    j->first[j->depth] = 1;
}

void jo_begin(struct jout *j, FILE *f)
{
    j->f = f;
    j->depth = -1;
    open_obj(j);
}

void jo_end(struct jout *j)
{
    fputc('}', j->f);
    if (--j->depth < 0) {
        fputc('\n', j->f);
        fflush(j->f);
    }
}

void jo_obj(struct jout *j, const char *k)
{
    key(j, k);
    open_obj(j);
}

void jo_int(struct jout *j, const char *k, int64_t v)
{
    key(j, k);
    fprintf(j->f, "%" PRId64, v);
}

void jo_num(struct jout *j, const char *k, double v)
{
    key(j, k);
    if (isfinite(v))
        fprintf(j->f, "%.10g", v);
    else
        fputs("null", j->f);
}

void jo_str(struct jout *j, const char *k, const char *v)
{
    key(j, k);
    fputc('"', j->f);
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(j->f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(j->f, "\\u%04x", *p);
        else
            fputc(*p, j->f);
    }
    fputc('"', j->f);
}

void jo_bool(struct jout *j, const char *k, int v)
{
    key(j, k);
    fputs(v ? "true" : "false", j->f);
}
