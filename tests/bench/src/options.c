#include "options.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CONNS_PER_WORKER 19000
#define CONNS_PER_SOURCE_IP 25000

static const char usage[] =
    "usage: chatbench fanout|idle|storm|reconnect --gateway HOST:PORT [--gateway ...] [options]\n"
    "\n"
    "Load generator for the chat gateway (see tests/bench/README.md).\n"
    "\n"
    "  fanout  CONNS members spread over the gateways and ROOMS rooms; the\n"
    "          first PUBLISHERS of them also publish, RATE messages/s in all,\n"
    "          for WARMUP + DURATION seconds. Reports deliveries/s, loss,\n"
    "          duplicates, out-of-order, latency, CPU per 100,000 deliveries.\n"
    "          Prints {\"event\":\"measure_start\"} and _end around the\n"
    "          measured seconds.\n"
    "  idle    CONNS connections that only keep alive. Reports handshakes/s,\n"
    "          RSS per connection, keepalive CPU, close codes at shutdown.\n"
    "  storm   CONNS connections opened as fast as possible, each joining room\n"
    "          i mod ROOMS right after its welcome. Reports the time to the\n"
    "          last joined, CPU per 1,000 connections, frames per client.\n"
    "  reconnect  CONNS members connect through --lb and join ROOMS rooms;\n"
    "          PUBLISHERS more connections on the first --gateway publish\n"
    "          RATE messages/s into every room. After WARMUP s the generator\n"
    "          SIGKILLs --kill; its members reconnect with the browser's\n"
    "          backoff and rejoin with since. Reports the time until all are\n"
    "          back, and per member messages missing and duplicated.\n"
    "\n"
    "  --gateway HOST:PORT[@PID]  a gateway to connect to (repeat for several);\n"
    "                       with @PID its CPU and RSS are sampled from /proc\n"
    "  --redis-pid PID      sample this Redis server's CPU too\n"
    "  --path PATH          WebSocket path (default /ws)\n"
    "  --conns N            connections (fanout 1000, others 10000); reconnect:\n"
    "                       members, the publishers come on top\n"
    "  --rooms N            rooms (1)\n"
    "  --publishers N       members that publish (10)\n"
    "  --rate N             messages/s, all publishers together (200)\n"
    "  --size N             bytes of chat content per message (100)\n"
    "  --warmup S           seconds of traffic before measuring (2); reconnect:\n"
    "                       of publishing before the kill\n"
    "  --duration S         seconds measured (10)\n"
    "  --drain S            longest wait for late messages after the end (30)\n"
    "  --idle S             idle: seconds of idle measurement (10)\n"
    "  --shutdown-wait S    idle: after the measurement, print\n"
    "                       {\"event\":\"idle_done\"} and wait up to S seconds\n"
    "                       for the gateways to close every connection (0)\n"
    "  --setup-timeout S    longest wait for connections and joins (120)\n"
    "  --workers N          client processes (one per 19,000 connections)\n"
    "  --source-ips N       connect from 127.0.0.1..N (one per 25,000 conns)\n"
    "  --connect-concurrency N  handshakes in flight per worker (256)\n"
    "  --progress S         seconds between progress lines on stderr, 0 off (2)\n"
    "  --lb HOST:PORT        reconnect: the load balancer the members use\n"
    "  --kill ID@PID        reconnect: SIGKILL PID; ID is its gateway id\n"
    "  --tail S             reconnect: publishing after all are back (3)\n"
    "  --deadline S         reconnect: longest wait after the kill (60)\n"
    "  --attempt-timeout S  reconnect: one attempt's longest wait for joined (10)\n"
    "  --backoff-base MS    reconnect: backoff base (500)\n"
    "  --backoff-cap MS     reconnect: backoff cap (15000)\n"
    "  --quiet              no human summary on stderr, only the JSON line\n"
    "  --help               this text\n"
    "\n"
    "Prints one JSON line on stdout. Durations are seconds (decimals allowed).\n";

static int bad(const char *flag, const char *val)
{
    fprintf(stderr, "chatbench: bad value for %s: '%s'\n", flag, val);
    return 2;
}

static int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
    char *end;
    unsigned long v;

    if (!*s || *s == '-')
        return -1;
    v = strtoul(s, &end, 10);
    if (*end || v < min || v > max)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int parse_num(const char *s, double min, double max, double *out)
{
    char *end;
    double v = strtod(s, &end);

    if (end == s || *end || !(v >= min) || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_secs(const char *s, double min, double *out)
{
    return parse_num(s, min, 86400, out);
}

static int parse_gateway(const char *s, struct gateway_addr *g)
{
    const char *colon = strrchr(s, ':');
    const char *at = strchr(s, '@');
    uint32_t port, pid = 0;
    char num[16];
    size_t hl;

    if (!colon || colon == s)
        return -1;
    hl = (size_t)(colon - s);
    if (hl >= sizeof(g->host))
        return -1;
    if (at) {
        if (at < colon || parse_u32(at + 1, 1, INT_MAX, &pid))
            return -1;
    }
    snprintf(num, sizeof(num), "%.*s", (int)((at ? at : colon + strlen(colon)) - colon - 1),
             colon + 1);
    if (parse_u32(num, 1, 65535, &port))
        return -1;
    memcpy(g->host, s, hl);
    g->host[hl] = '\0';
    g->port = (uint16_t)port;
    g->pid = (pid_t)pid;
    return 0;
}

static int mode_of(const char *s, enum mode *m)
{
    static const char *const names[] = {"fanout", "idle", "storm", "reconnect"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(s, names[i]) == 0) {
            *m = (enum mode)i;
            return 0;
        }
    return -1;
}

static void set_defaults(struct options *o)
{
    memset(o, 0, sizeof(*o));
    strcpy(o->path, "/ws");
    o->rooms = 1;
    o->publishers = 10;
    o->rate = 200;
    o->size = 100;
    o->warmup_s = 2;
    o->duration_s = 10;
    o->drain_s = 30;
    o->idle_s = 10;
    o->setup_timeout_s = 120;
    o->progress_s = 2;
    o->connect_concurrency = 256;
    o->tail_s = 3;
    o->deadline_s = 60;
    o->attempt_timeout_s = 10;
    o->backoff_base_ms = 500;
    o->backoff_cap_ms = 15000;
}

static int parse_kill(const char *s, struct options *o)
{
    const char *at = strrchr(s, '@');
    uint32_t pid;

    if (!at || at == s || (size_t)(at - s) >= sizeof(o->kill_id) ||
        parse_u32(at + 1, 2, INT_MAX, &pid))
        return -1;
    memcpy(o->kill_id, s, (size_t)(at - s));
    o->kill_id[at - s] = '\0';
    o->kill_pid = (pid_t)pid;
    return 0;
}

/* What reconnect needs on top of the common checks. */
static int finish_reconnect(struct options *o)
{
    if (!o->have_lb || !o->kill_pid) {
        fprintf(stderr, "chatbench: reconnect needs --lb and --kill\n");
        return 2;
    }
    /* A publisher joins its rooms one after the other, and the gateway
     * holds a connection in at most 100 rooms by default. */
    if (o->rooms > o->publishers * 100) {
        fprintf(stderr, "chatbench: reconnect needs --publishers of at least --rooms / 100\n");
        return 2;
    }
    if (o->publishers > o->rooms) {
        fprintf(stderr, "chatbench: reconnect needs --publishers at most --rooms\n");
        return 2;
    }
    if (o->backoff_base_ms > o->backoff_cap_ms) {
        fprintf(stderr, "chatbench: --backoff-base exceeds --backoff-cap\n");
        return 2;
    }
    return 0;
}

static int finish(struct options *o)
{
    if (o->gateways == 0) {
        fprintf(stderr, "chatbench: at least one --gateway is needed\n");
        return 2;
    }
    if (o->conns == 0)
        o->conns = o->mode == MODE_FANOUT ? 1000 : 10000;
    if (o->mode == MODE_RECONNECT && finish_reconnect(o))
        return 2;
    if (o->mode != MODE_IDLE && o->rooms > o->conns) {
        fprintf(stderr, "chatbench: --rooms exceeds --conns\n");
        return 2;
    }
    if (o->mode == MODE_FANOUT) {
        if (o->publishers > o->conns) {
            fprintf(stderr, "chatbench: --publishers exceeds --conns\n");
            return 2;
        }
    }
    if (o->workers == 0)
        o->workers = (options_total_conns(o) + MAX_CONNS_PER_WORKER - 1) / MAX_CONNS_PER_WORKER;
    if (o->workers > options_total_conns(o))
        o->workers = options_total_conns(o);
    if (o->source_ips == 0)
        o->source_ips = (o->conns + CONNS_PER_SOURCE_IP - 1) / CONNS_PER_SOURCE_IP;
    return 0;
}

int options_parse(int argc, char **argv, struct options *o)
{
    enum {
        O_GW = 256,
        O_REDIS,
        O_PATH,
        O_CONNS,
        O_ROOMS,
        O_PUBS,
        O_RATE,
        O_SIZE,
        O_WARMUP,
        O_DURATION,
        O_DRAIN,
        O_IDLE,
        O_SHUTWAIT,
        O_SETUP,
        O_WORKERS,
        O_SRCIPS,
        O_CONC,
        O_PROGRESS,
        O_QUIET,
        O_LB,
        O_KILL,
        O_TAIL,
        O_DEADLINE,
        O_ATTEMPT,
        O_BBASE,
        O_BCAP,
        O_HELP
    };
    static const struct option longopts[] = {
        {"gateway", required_argument, NULL, O_GW},
        {"redis-pid", required_argument, NULL, O_REDIS},
        {"path", required_argument, NULL, O_PATH},
        {"conns", required_argument, NULL, O_CONNS},
        {"rooms", required_argument, NULL, O_ROOMS},
        {"publishers", required_argument, NULL, O_PUBS},
        {"rate", required_argument, NULL, O_RATE},
        {"size", required_argument, NULL, O_SIZE},
        {"warmup", required_argument, NULL, O_WARMUP},
        {"duration", required_argument, NULL, O_DURATION},
        {"drain", required_argument, NULL, O_DRAIN},
        {"idle", required_argument, NULL, O_IDLE},
        {"shutdown-wait", required_argument, NULL, O_SHUTWAIT},
        {"setup-timeout", required_argument, NULL, O_SETUP},
        {"workers", required_argument, NULL, O_WORKERS},
        {"source-ips", required_argument, NULL, O_SRCIPS},
        {"connect-concurrency", required_argument, NULL, O_CONC},
        {"progress", required_argument, NULL, O_PROGRESS},
        {"quiet", no_argument, NULL, O_QUIET},
        {"lb", required_argument, NULL, O_LB},
        {"kill", required_argument, NULL, O_KILL},
        {"tail", required_argument, NULL, O_TAIL},
        {"deadline", required_argument, NULL, O_DEADLINE},
        {"attempt-timeout", required_argument, NULL, O_ATTEMPT},
        {"backoff-base", required_argument, NULL, O_BBASE},
        {"backoff-cap", required_argument, NULL, O_BCAP},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    uint32_t u;
    int c;

    set_defaults(o);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage, stdout);
        return 1;
    }
    if (argc < 2 || mode_of(argv[1], &o->mode)) {
        fputs(usage, stderr);
        return 2;
    }
    optind = 2;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        const char *a = optarg;
        const char *f = c >= O_GW && c <= O_HELP ? longopts[c - O_GW].name : "";

        switch (c) {
        case O_GW:
            if (o->gateways == MAX_GATEWAYS || parse_gateway(a, &o->gw[o->gateways]))
                return bad(f, a);
            o->gateways++;
            break;
        case O_REDIS:
            if (parse_u32(a, 1, INT_MAX, &u))
                return bad(f, a);
            o->redis_pid = (pid_t)u;
            break;
        case O_PATH:
            if (a[0] != '/' || strlen(a) >= sizeof(o->path) - 48)
                return bad(f, a);
            strcpy(o->path, a);
            break;
        case O_CONNS:
            if (parse_u32(a, 1, 1000000, &o->conns))
                return bad(f, a);
            break;
        case O_ROOMS:
            if (parse_u32(a, 1, 1000000, &o->rooms))
                return bad(f, a);
            break;
        case O_PUBS:
            if (parse_u32(a, 1, 1000000, &o->publishers))
                return bad(f, a);
            break;
        case O_RATE:
            if (parse_num(a, 0.001, 1e7, &o->rate))
                return bad(f, a);
            break;
        case O_SIZE:
            if (parse_u32(a, 1, 60000, &o->size))
                return bad(f, a);
            break;
        case O_WARMUP:
            if (parse_secs(a, 0, &o->warmup_s))
                return bad(f, a);
            break;
        case O_DURATION:
            if (parse_secs(a, 0.1, &o->duration_s))
                return bad(f, a);
            break;
        case O_DRAIN:
            if (parse_secs(a, 0.1, &o->drain_s))
                return bad(f, a);
            break;
        case O_IDLE:
            if (parse_secs(a, 0.1, &o->idle_s))
                return bad(f, a);
            break;
        case O_SHUTWAIT:
            if (parse_secs(a, 0, &o->shutdown_wait_s))
                return bad(f, a);
            break;
        case O_SETUP:
            if (parse_secs(a, 1, &o->setup_timeout_s))
                return bad(f, a);
            break;
        case O_WORKERS:
            if (parse_u32(a, 1, 64, &u))
                return bad(f, a);
            o->workers = u;
            break;
        case O_SRCIPS:
            if (parse_u32(a, 1, 250, &u))
                return bad(f, a);
            o->source_ips = u;
            break;
        case O_CONC:
            if (parse_u32(a, 1, 100000, &u))
                return bad(f, a);
            o->connect_concurrency = u;
            break;
        case O_PROGRESS:
            if (parse_secs(a, 0, &o->progress_s))
                return bad(f, a);
            break;
        case O_QUIET:
            o->quiet = 1;
            break;
        case O_LB:
            if (parse_gateway(a, &o->lb))
                return bad(f, a);
            o->have_lb = 1;
            break;
        case O_KILL:
            if (parse_kill(a, o))
                return bad(f, a);
            break;
        case O_TAIL:
            if (parse_secs(a, 0, &o->tail_s))
                return bad(f, a);
            break;
        case O_DEADLINE:
            if (parse_secs(a, 1, &o->deadline_s))
                return bad(f, a);
            break;
        case O_ATTEMPT:
            if (parse_secs(a, 0.1, &o->attempt_timeout_s))
                return bad(f, a);
            break;
        case O_BBASE:
            if (parse_u32(a, 1, 3600000, &o->backoff_base_ms))
                return bad(f, a);
            break;
        case O_BCAP:
            if (parse_u32(a, 1, 3600000, &o->backoff_cap_ms))
                return bad(f, a);
            break;
        case O_HELP:
        case 'h':
            fputs(usage, stdout);
            return 1;
        default:
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "chatbench: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    return finish(o);
}
