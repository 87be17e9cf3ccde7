/* check: the unit tests' only framework. A failed CHECK prints where and
 * what and the run goes on, so one run shows every failure; CHECK_DONE
 * prints the tally and gives main its exit status.
 *
 * Every test executable's main is
 *     int main(int argc, char **argv)
 *     {
 *         CHECK_ARGS(argc, argv);
 *         RUN(test_one);
 *         RUN(test_two);
 *         return CHECK_DONE("test_module");
 *     }
 * so that `test_module` runs every case, `test_module test_two` only the
 * cases named and `test_module --list` prints the names. A name that is no
 * case fails the run: a renamed case is not silently skipped. */
#ifndef UNIT_CHECK_H
#define UNIT_CHECK_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static unsigned check_passed, check_failed;
static const char *check_test = "";
static char **check_names;           /* the cases asked for: argv[1..], NULL-terminated */
static bool check_listing;           /* --list: print the names, run nothing */
static const char *check_cases[128]; /* every case RUN saw, to vet check_names */
static unsigned check_ncases;

#define CHECK_ARGS(argc, argv) check_args_((argc), (argv))
static inline void check_args_(int argc, char **argv)
{
    check_listing = argc == 2 && strcmp(argv[1], "--list") == 0;
    check_names = argc > 1 && !check_listing ? argv + 1 : NULL;
}

/* Whether to run the case called name; with --list, prints it instead. */
static inline bool check_wanted_(const char *name)
{
    if (check_ncases < sizeof(check_cases) / sizeof(check_cases[0]))
        check_cases[check_ncases++] = name;
    if (check_listing)
        printf("%s\n", name);
    if (check_listing || !check_names)
        return !check_listing;
    for (char **n = check_names; *n; n++)
        if (strcmp(*n, name) == 0)
            return true;
    return false;
}

/* Runs the case unless others were asked for; the case is named in the
 * report of each of its failures. */
#define RUN(fn) (check_wanted_(#fn) ? (void)(check_test = #fn, fn()) : (void)0)

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

#define CHECK_DONE(name) check_done_(name)
static inline int check_done_(const char *name)
{
    if (check_listing)
        return 0;
    for (char **n = check_names; n && *n; n++) {
        bool known = false;
        for (unsigned i = 0; i < check_ncases; i++)
            known |= strcmp(check_cases[i], *n) == 0;
        if (!known) {
            fprintf(stderr, "%s: no case named %s (--list shows them)\n", name, *n);
            check_failed++;
        }
    }
    printf("%s: %u passed, %u failed\n", name, check_passed, check_failed);
    return check_failed ? 1 : 0;
}

#endif
