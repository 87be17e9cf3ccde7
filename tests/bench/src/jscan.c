#include "jscan.h"

#include <stddef.h>
#include <string.h>

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* p is just past an opening quote; returns the closing quote or NULL. */
static const char *string_end(const char *p, const char *end)
{
    while (p < end) {
        const char *q = memchr(p, '"', (size_t)(end - p));
        const char *b = q;

        if (!q)
            return NULL;
        while (b > p && b[-1] == '\\')
            b--;
        if (((q - b) & 1) == 0)
            return q; /* an even run of backslashes escapes nothing */
        p = q + 1;
    }
    return NULL;
}

/* Skips one value starting at p; returns the first byte after it or NULL. */
static const char *skip_value(const char *p, const char *end)
{
    int depth = 0;

    if (p >= end)
        return NULL;
    if (*p == '"') {
        const char *q = string_end(p + 1, end);

        return q ? q + 1 : NULL;
    }
    if (*p != '{' && *p != '[') {
        while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n' &&
               *p != '\r' && *p != '\t')
            p++;
        return p;
    }
    while (p < end) {
        if (*p == '"') {
            p = string_end(p + 1, end);
            if (!p)
                return NULL;
        } else if (*p == '{' || *p == '[') {
            depth++;
        } else if (*p == '}' || *p == ']') {
            if (--depth == 0)
                return p + 1;
        }
        p++;
    }
    return NULL;
}

static struct jspan *slot_for(struct jmsg *m, const char *k, size_t n)
{
    static const struct {
        const char *key;
        size_t off;
    } keys[] = {
        {"type", offsetof(struct jmsg, type)},
        {"content", offsetof(struct jmsg, content)},
        {"code", offsetof(struct jmsg, code)},
        {"id", offsetof(struct jmsg, id)},
        {"gateway", offsetof(struct jmsg, gateway)},
        {"history", offsetof(struct jmsg, history)},
        {"truncated", offsetof(struct jmsg, truncated)},
        {"cid", offsetof(struct jmsg, cid)},
        {"retry_after_ms", offsetof(struct jmsg, retry_after_ms)},
    };

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strlen(keys[i].key) == n && memcmp(k, keys[i].key, n) == 0)
            return (struct jspan *)(void *)((char *)m + keys[i].off);
    return NULL;
}

int jscan_message(const char *buf, size_t n, struct jmsg *m)
{
    const char *end = buf + n;
    const char *p = skip_ws(buf, end);

    memset(m, 0, sizeof(*m));
    if (p >= end || *p++ != '{')
        return -1;
    for (;;) {
        const char *key, *kend, *v, *vend;
        struct jspan *slot;

        p = skip_ws(p, end);
        if (p < end && *p == '}')
            return 0;
        if (p >= end || *p != '"')
            return -1;
        key = p + 1;
        kend = string_end(key, end);
        if (!kend)
            return -1;
        p = skip_ws(kend + 1, end);
        if (p >= end || *p++ != ':')
            return -1;
        v = skip_ws(p, end);
        vend = skip_value(v, end);
        if (!vend || vend == v)
            return -1;
        slot = slot_for(m, key, (size_t)(kend - key));
        if (slot) {
            int quoted = *v == '"';

            slot->p = v + quoted;
            slot->n = (size_t)(vend - v) - 2 * (size_t)quoted;
        }
        p = skip_ws(vend, end);
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        if (p < end && *p == '}')
            return 0;
        return -1;
    }
}

int jscan_array_next(struct jspan arr, const char **pos, struct jspan *elem)
{
    const char *end = arr.p + arr.n - 1; /* the closing bracket */
    const char *p, *v;

    if (!arr.p || arr.n < 2 || arr.p[0] != '[' || *end != ']')
        return -1;
    if (*pos == arr.p) {
        p = skip_ws(arr.p + 1, end);
        if (p >= end)
            return 0;
    } else {
        p = skip_ws(*pos, end);
        if (p >= end)
            return 0;
        if (*p != ',')
            return -1;
        p = skip_ws(p + 1, end);
    }
    v = skip_value(p, end);
    if (!v || v == p)
        return -1;
    elem->p = p;
    elem->n = (size_t)(v - p);
    *pos = v;
    return 1;
}

int jspan_is(struct jspan s, const char *lit)
{
    size_t n = strlen(lit);

    return s.p && s.n == n && memcmp(s.p, lit, n) == 0;
}
