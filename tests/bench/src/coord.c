#include "coord.h"

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "procstat.h"
#include "report.h"
#include "shared.h"
#include "worker.h"

#define POLL_US 20000
#define SETTLE_QUIET_US 1000000
#define SETTLE_MAX_US 60000000
#define REAP_GRACE_US 10000000
#define ACK_WAIT_US 10000000 /* reconnect: longest wait for publishers' acks */

struct coord {
    const struct options *o;
    struct shared *sh;
    pid_t pid[64];
    unsigned forked;
    int64_t started_us;
    int64_t last_progress_us;
    uint64_t last_delivered;
    const char *stage;
    const char *failure;
};

/* CPU-seconds of the watched processes at one moment. */
struct usage {
    double gw_cpu, redis_cpu, gen_cpu;
    double worker_cpu[64];
    long gw_rss_kb;
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    interrupted = sig;
}

static uint64_t sum_prog(const struct coord *c, size_t field)
{
    uint64_t total = 0;

    for (unsigned i = 0; i < c->o->workers; i++) {
        _Atomic uint64_t *f = (_Atomic uint64_t *)((char *)&c->sh->slot[i].prog + field);

        total += atomic_load_explicit(f, memory_order_relaxed);
    }
    return total;
}

#define PROG(c, name) sum_prog((c), offsetof(struct progress, name))

static void progress_line(struct coord *c, int64_t now)
{
    double t = (double)(now - c->started_us) / 1e6;
    double dt = (double)(now - c->last_progress_us) / 1e6;
    uint64_t delivered = PROG(c, delivered);

    fprintf(stderr,
            "[chatbench %6.1fs] %-8s open %llu/%u joined %llu sent %llu "
            "delivered %llu (%.0f/s) frames %llu pings %llu\n",
            t, c->stage, (unsigned long long)PROG(c, open), options_total_conns(c->o),
            (unsigned long long)PROG(c, joined), (unsigned long long)PROG(c, sent),
            (unsigned long long)delivered,
            dt > 0 ? (double)(delivered - c->last_delivered) / dt : 0.0,
            (unsigned long long)PROG(c, frames_in), (unsigned long long)PROG(c, pings));
    if (c->o->mode == MODE_RECONNECT)
        fprintf(stderr, "[chatbench %6.1fs] in room %llu unacked %llu\n", t,
                (unsigned long long)PROG(c, in_room), (unsigned long long)PROG(c, unacked));
    c->last_delivered = delivered;
    c->last_progress_us = now;
}

static int count_state(const struct coord *c, int state)
{
    int n = 0;

    for (unsigned i = 0; i < c->o->workers; i++)
        n += atomic_load_explicit(&c->sh->slot[i].state, memory_order_acquire) == state;
    return n;
}

/* Sleeps one poll interval, prints progress when due, and checks that
 * nothing went wrong. Returns -1 (with c->failure set) when the run must
 * stop. */
static int poll_once(struct coord *c)
{
    int64_t now;

    usleep(POLL_US);
    now = now_us();
    if (c->o->progress_s > 0 && now - c->last_progress_us >= (int64_t)(c->o->progress_s * 1e6))
        progress_line(c, now);
    if (interrupted) {
        c->failure = "interrupted";
        return -1;
    }
    if (count_state(c, WK_FAILED)) {
        c->failure = "a worker failed";
        return -1;
    }
    for (unsigned i = 0; i < c->forked; i++) {
        int st;

        if (c->pid[i] > 0 && waitpid(c->pid[i], &st, WNOHANG) == c->pid[i]) {
            c->pid[i] = 0;
            if (atomic_load(&c->sh->slot[i].state) != WK_DONE) {
                c->failure = "a worker died";
                return -1;
            }
        }
    }
    return 0;
}

static int wait_state(struct coord *c, int state, double timeout_s, const char *what)
{
    int64_t deadline = now_us() + (int64_t)(timeout_s * 1e6);

    while (count_state(c, state) < (int)c->o->workers) {
        if (poll_once(c))
            return -1;
        if (now_us() > deadline) {
            c->failure = what;
            return -1;
        }
    }
    return 0;
}

static int wait_until(struct coord *c, int64_t t)
{
    while (now_us() < t)
        if (poll_once(c))
            return -1;
    return 0;
}

static void sample(const struct coord *c, struct usage *u, int *have_gw, int *have_redis)
{
    const struct options *o = c->o;
    double cpu;
    long rss;

    memset(u, 0, sizeof(*u));
    *have_gw = 1;
    for (unsigned g = 0; g < o->gateways; g++) {
        if (!o->gw[g].pid || procstat_read(o->gw[g].pid, &cpu, &rss)) {
            *have_gw = 0;
            continue;
        }
        u->gw_cpu += cpu;
        u->gw_rss_kb += rss;
    }
    *have_redis = o->redis_pid && !procstat_read(o->redis_pid, &cpu, &rss);
    if (*have_redis)
        u->redis_cpu = cpu;
    if (!procstat_read(getpid(), &cpu, &rss))
        u->gen_cpu = cpu;
    for (unsigned i = 0; i < c->forked; i++)
        if (c->pid[i] > 0 && !procstat_read(c->pid[i], &cpu, &rss)) {
            u->worker_cpu[i] = cpu;
            u->gen_cpu += cpu;
        }
}

/* Fills the CPU part of r from two samples taken window_s apart. */
static void usage_between(const struct coord *c, const struct usage *a, const struct usage *b,
                          struct run_result *r)
{
    r->gw_cpu_s = b->gw_cpu - a->gw_cpu;
    r->redis_cpu_s = b->redis_cpu - a->redis_cpu;
    r->gen_cpu_s = b->gen_cpu - a->gen_cpu;
    for (unsigned i = 0; i < c->forked; i++) {
        double busy = (b->worker_cpu[i] - a->worker_cpu[i]) / r->window_s;

        if (busy > r->gen_busy_max)
            r->gen_busy_max = busy;
    }
}

/* Waits until the gateways stop sending the frames that announce every
 * connect and join to every client (N connections cost about N^2 frames),
 * so that what is measured next is not queued behind them. Sets *quiet to
 * whether they did stop. */
static int settle(struct coord *c, int *quiet)
{
    int64_t start = now_us(), quiet_since = start;
    uint64_t frames = PROG(c, frames_in);

    while (now_us() - quiet_since < SETTLE_QUIET_US && now_us() - start < SETTLE_MAX_US) {
        uint64_t f;

        if (poll_once(c))
            return -1;
        f = PROG(c, frames_in);
        if (f != frames) {
            frames = f;
            quiet_since = now_us();
        }
    }
    *quiet = now_us() - quiet_since >= SETTLE_QUIET_US;
    return 0;
}

static int settle_timed(struct coord *c, struct run_result *r)
{
    int64_t t = now_us();

    c->stage = "settle";
    if (settle(c, &r->settled))
        return -1;
    r->settle_s = (double)(now_us() - t) / 1e6;
    return 0;
}

/* Waits until every worker has its connections in their rooms. */
static int wait_setup(struct coord *c, struct run_result *r)
{
    c->stage = "setup";
    if (wait_state(c, WK_READY, c->o->setup_timeout_s,
                   "setup timed out (connections or joins missing)"))
        return -1;
    r->setup_s = (double)(now_us() - c->started_us) / 1e6;
    return 0;
}

/* One {"event":NAME} line on stdout, at once: the caller acts on it. */
static void event(const char *name)
{
    printf("{\"event\":\"%s\"}\n", name);
    fflush(stdout);
}

static int run_fanout(struct coord *c, struct run_result *r)
{
    const struct options *o = c->o;
    struct shared *sh = c->sh;
    struct usage a, b;
    int have_redis;

    if (wait_setup(c, r))
        return -1;
    if (settle_timed(c, r))
        return -1;
    sh->t_go = now_us() + 100000;
    sh->m_start = sh->t_go + (int64_t)(o->warmup_s * 1e6);
    sh->m_end = sh->m_start + (int64_t)(o->duration_s * 1e6);
    atomic_store_explicit(&sh->phase, PH_RUN, memory_order_release);
    c->stage = "warmup";
    if (wait_until(c, sh->m_start))
        return -1;
    sample(c, &a, &r->have_gw, &have_redis);
    /* The caller samples what only it knows (e.g. each node of a Redis
     * Cluster) over the same window. */
    event("measure_start");
    c->stage = "measure";
    if (wait_until(c, sh->m_end))
        return -1;
    sample(c, &b, &r->have_gw, &r->have_redis);
    event("measure_end");
    r->have_redis = r->have_redis && have_redis;
    r->window_s = o->duration_s;
    usage_between(c, &a, &b, r);
    c->stage = "drain";
    return wait_state(c, WK_DONE, o->drain_s + REAP_GRACE_US / 1e6,
                      "workers did not finish after the drain");
}

static int run_idle(struct coord *c, struct run_result *r, const struct usage *before)
{
    const struct options *o = c->o;
    struct usage a, b;
    uint64_t pings;
    int have_gw, have_redis;

    c->stage = "connect";
    if (wait_state(c, WK_READY, o->setup_timeout_s, "setup timed out (connections missing)"))
        return -1;
    r->setup_s = (double)(now_us() - c->started_us) / 1e6;
    if (settle_timed(c, r))
        return -1;
    sample(c, &a, &have_gw, &have_redis);
    pings = PROG(c, pings);
    c->stage = "idle";
    if (wait_until(c, now_us() + (int64_t)(o->idle_s * 1e6)))
        return -1;
    sample(c, &b, &r->have_gw, &r->have_redis);
    r->have_gw = r->have_gw && have_gw;
    r->have_redis = r->have_redis && have_redis;
    r->window_s = o->idle_s;
    r->pings_window = PROG(c, pings) - pings;
    r->gw_rss_before_kb = before->gw_rss_kb;
    r->gw_rss_after_kb = a.gw_rss_kb;
    usage_between(c, &a, &b, r);
    /* The phase first: on a loaded machine the gateways' 1001 can reach a
     * worker before this process runs again after the line below. */
    c->sh->shutdown_deadline = now_us() + (int64_t)(o->shutdown_wait_s * 1e6);
    atomic_store_explicit(&c->sh->phase, PH_SHUTDOWN, memory_order_release);
    if (o->shutdown_wait_s > 0) {
        /* The caller stops the gateways when it reads this line. */
        event("idle_done");
    }
    c->stage = "shutdown";
    return wait_state(c, WK_DONE, o->shutdown_wait_s + REAP_GRACE_US / 1e6,
                      "workers did not finish after the shutdown");
}

static const char STORM_TIMEOUT[] = "storm timed out (connections or joins missing)";

/* Storm: everything from the first connect to the last joined, then the
 * tail of announcements until the gateways go quiet. */
static int run_storm(struct coord *c, struct run_result *r, const struct usage *before)
{
    struct usage a, b;
    int have_gw, have_redis;

    c->stage = "storm";
    /* A storm the gateways do not finish is a result, not a failure: it
     * is reported with what did join (and timed_out). */
    if (wait_state(c, WK_READY, c->o->setup_timeout_s, STORM_TIMEOUT)) {
        if (c->failure != STORM_TIMEOUT)
            return -1;
        c->failure = NULL;
        r->deadline_hit = 1;
    }
    sample(c, &a, &r->have_gw, &r->have_redis);
    r->setup_s = r->window_s = (double)(now_us() - c->started_us) / 1e6;
    usage_between(c, before, &a, r);
    if (settle_timed(c, r))
        return -1;
    sample(c, &b, &have_gw, &have_redis);
    r->settle_gw_cpu_s = b.gw_cpu - a.gw_cpu;
    r->settle_redis_cpu_s = b.redis_cpu - a.redis_cpu;
    atomic_store_explicit(&c->sh->phase, PH_DONE, memory_order_release);
    c->stage = "count";
    return wait_state(c, WK_DONE, REAP_GRACE_US / 1e6, "workers did not finish after the storm");
}

/* Waits until the kill has closed every victim's connection and every
 * connection is open and in its rooms again, or the deadline. (Before
 * the closes are seen, everyone still looks in their room.) */
static int wait_back(struct coord *c, int64_t deadline, struct run_result *r)
{
    uint64_t total = options_total_conns(c->o);

    while (PROG(c, victim_closes) < PROG(c, victims) || PROG(c, in_room) < total ||
           PROG(c, open) < total) {
        if (poll_once(c))
            return -1;
        if (now_us() > deadline) {
            r->deadline_hit = 1;
            break;
        }
    }
    return 0;
}

static int run_reconnect(struct coord *c, struct run_result *r)
{
    const struct options *o = c->o;
    struct shared *sh = c->sh;
    struct usage a, b;
    int have_gw, have_redis;
    int64_t t;

    if (wait_setup(c, r))
        return -1;
    sh->t_go = now_us() + 100000;
    atomic_store_explicit(&sh->phase, PH_RUN, memory_order_release);
    c->stage = "publish";
    if (wait_until(c, sh->t_go + (int64_t)(o->warmup_s * 1e6)))
        return -1;
    sample(c, &a, &have_gw, &have_redis);
    r->kill_us = now_us();
    /* Stamped before the kill, so that every close it causes is seen
     * after it. */
    atomic_store(&sh->t_kill, r->kill_us);
    if (kill(o->kill_pid, SIGKILL)) {
        c->failure = "cannot SIGKILL the --kill process";
        return -1;
    }
    c->stage = "reconnect";
    if (wait_back(c, r->kill_us + (int64_t)(o->deadline_s * 1e6), r))
        return -1;
    sample(c, &b, &r->have_gw, &r->have_redis);
    r->have_gw = r->have_gw && have_gw;
    r->have_redis = r->have_redis && have_redis;
    r->window_s = (double)(now_us() - r->kill_us) / 1e6;
    usage_between(c, &a, &b, r);
    c->stage = "tail";
    if (!r->deadline_hit && wait_until(c, now_us() + (int64_t)(o->tail_s * 1e6)))
        return -1;
    atomic_store_explicit(&sh->phase, PH_STOP, memory_order_release);
    c->stage = "acks";
    t = now_us();
    while (PROG(c, unacked) && now_us() - t < ACK_WAIT_US)
        if (poll_once(c))
            return -1;
    r->unacked = PROG(c, unacked);
    atomic_store_explicit(&sh->phase, PH_CHECK, memory_order_release);
    c->stage = "drain";
    return wait_state(c, WK_DONE, o->drain_s + REAP_GRACE_US / 1e6,
                      "workers did not finish after the drain");
}

static void stop_workers(struct coord *c)
{
    for (unsigned i = 0; i < c->forked; i++)
        if (c->pid[i] > 0)
            kill(c->pid[i], SIGTERM);
    for (unsigned i = 0; i < c->forked; i++)
        if (c->pid[i] > 0)
            waitpid(c->pid[i], NULL, 0);
}

static int fork_workers(struct coord *c)
{
    pid_t parent = getpid();

    fflush(NULL);
    for (unsigned i = 0; i < c->o->workers; i++) {
        pid_t pid = fork();

        if (pid < 0) {
            c->failure = "fork failed";
            return -1;
        }
        if (pid == 0) {
            signal(SIGINT, SIG_DFL);
            signal(SIGTERM, SIG_DFL);
            /* A worker must not outlive a coordinator killed hard. */
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent)
                _exit(1);
            _exit(worker_main(c->o, c->sh, i));
        }
        c->pid[c->forked++] = pid;
    }
    return 0;
}

int coord_run(const struct options *o)
{
    struct coord c = {.o = o, .stage = "start"};
    struct run_result r = {.o = o};
    struct sigaction sa = {.sa_handler = on_signal};
    struct usage before;
    int have_gw, have_redis, rc;

    c.sh = shared_create(o->workers, o->mode == MODE_RECONNECT ? o->rooms : 0);
    if (!c.sh) {
        fprintf(stderr, "chatbench: cannot map shared memory: %s\n", strerror(errno));
        return 1;
    }
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sample(&c, &before, &have_gw, &have_redis);
    c.started_us = c.last_progress_us = now_us();
    rc = fork_workers(&c);
    if (rc == 0) {
        switch (o->mode) {
        case MODE_FANOUT:
            rc = run_fanout(&c, &r);
            break;
        case MODE_IDLE:
            rc = run_idle(&c, &r, &before);
            break;
        case MODE_STORM:
            rc = run_storm(&c, &r, &before);
            break;
        case MODE_RECONNECT:
            rc = run_reconnect(&c, &r);
            break;
        }
    }
    if (rc)
        stop_workers(&c);
    else
        for (unsigned i = 0; i < c.forked; i++)
            if (c.pid[i] > 0)
                waitpid(c.pid[i], NULL, 0);
    for (unsigned i = 0; i < c.forked; i++)
        wstats_merge(&r.st, &c.sh->slot[i].final);
    if (rc) {
        progress_line(&c, now_us()); /* how far it got */
        fprintf(stderr, "chatbench: %s during %s%s%s\n", c.failure, c.stage,
                r.st.first_error[0] ? ": " : "", r.st.first_error);
        shared_destroy(c.sh);
        return interrupted ? 130 : 1;
    }
    switch (o->mode) {
    case MODE_FANOUT:
        report_fanout(&r);
        break;
    case MODE_IDLE:
        report_idle(&r);
        break;
    case MODE_STORM:
        report_storm(&r);
        break;
    case MODE_RECONNECT:
        report_reconnect(&r);
        break;
    }
    shared_destroy(c.sh);
    return 0;
}
