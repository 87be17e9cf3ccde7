#ifndef CHATBENCH_OPTIONS_H
#define CHATBENCH_OPTIONS_H

#include <stdint.h>
#include <sys/types.h>

#define MAX_GATEWAYS 64

enum mode { MODE_FANOUT, MODE_IDLE, MODE_STORM, MODE_RECONNECT };

struct gateway_addr {
    char host[64]; /* numeric IPv4 */
    uint16_t port;
    pid_t pid; /* 0: not watched */
};

struct options {
    enum mode mode;
    struct gateway_addr gw[MAX_GATEWAYS];
    unsigned gateways;
    pid_t redis_pid;
    char path[128];
    uint32_t conns;
    uint32_t rooms;
    uint32_t publishers;
    double rate;   /* messages per second, all publishers together */
    uint32_t size; /* bytes of chat content */
    double warmup_s;
    double duration_s;
    double drain_s;
    double idle_s;
    double shutdown_wait_s;
    double setup_timeout_s;
    double progress_s;
    unsigned workers;
    unsigned source_ips;
    unsigned connect_concurrency;
    int quiet;
    /* reconnect */
    struct gateway_addr lb; /* where the members connect */
    int have_lb;
    char kill_id[65]; /* gateway id of the victim, as its welcome says */
    pid_t kill_pid;
    double tail_s;     /* publishing after every member is back */
    double deadline_s; /* longest wait for them after the kill */
    double attempt_timeout_s;
    uint32_t backoff_base_ms;
    uint32_t backoff_cap_ms;
};

/* Connections the generator opens: reconnect's publishers come on top of
 * its --conns members; elsewhere publishers are members. */
static inline uint32_t options_total_conns(const struct options *o)
{
    return o->conns + (o->mode == MODE_RECONNECT ? o->publishers : 0);
}

/* Parses argv. Returns 0 to run, 1 when --help was printed, 2 on a usage
 * error (already reported on stderr). */
int options_parse(int argc, char **argv, struct options *o);

#endif
