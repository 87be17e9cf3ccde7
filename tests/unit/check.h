/* check: the unit tests' only framework. A failed CHECK prints where and
 * what and the run goes on, so one run shows every failure; CHECK_DONE
 * prints the tally and gives main its exit status. */
#ifndef UNIT_CHECK_H
#define UNIT_CHECK_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static unsigned check_passed, check_failed;
static const char *check_test = "";

/* The test a failure belongs to, for the report. */
#define RUN(fn) (check_test = #fn, fn())

static inline bool check_(bool ok, const char *file, int line, const char *what)
{
    if (ok) {
        check_passed++;
    } else {
        check_failed++;
        fprintf(stderr, "%s:%d: %s: CHECK failed: %s\n", file, line, check_test, what);
    }
    return ok;
}

/* Takes the operator as text so each operand is evaluated exactly once. */
static inline bool check_cmp_(long long a, const char *op, long long b, const char *file, int line,
                              const char *what)
{
    bool ok = strcmp(op, "==") == 0   ? a == b
              : strcmp(op, "!=") == 0 ? a != b
              : strcmp(op, "<") == 0  ? a < b
              : strcmp(op, "<=") == 0 ? a <= b
              : strcmp(op, ">") == 0  ? a > b
              : strcmp(op, ">=") == 0 ? a >= b
                                      : false;
    if (!ok)
        fprintf(stderr, "%s:%d: %s: values: %lld %s %lld\n", file, line, check_test, a, op, b);
    return check_(ok, file, line, what);
}

static inline bool check_str_(const char *a, const char *b, const char *file, int line,
                              const char *what)
{
    bool ok = a && b && strcmp(a, b) == 0;
    if (!ok)
        fprintf(stderr, "%s:%d: %s: strings: \"%s\" and \"%s\"\n", file, line, check_test,
                a ? a : "(null)", b ? b : "(null)");
    return check_(ok, file, line, what);
}

/* Each evaluates to whether it passed, so a test can stop early:
 *     if (!CHECK(p)) return; */
#define CHECK(expr) check_(!!(expr), __FILE__, __LINE__, #expr)
/* Integers compared with op (==, !=, <, <=, >, >=); both values are
 * printed on failure. */
#define CHECK_INT(a, op, b)                                                                        \
    check_cmp_((long long)(a), #op, (long long)(b), __FILE__, __LINE__, #a " " #op " " #b)
#define CHECK_STR(a, b) check_str_((a), (b), __FILE__, __LINE__, #a " == " #b)

#define CHECK_DONE(name)                                                                           \
    (printf("%s: %u passed, %u failed\n", (name), check_passed, check_failed), check_failed ? 1 : 0)

#endif
