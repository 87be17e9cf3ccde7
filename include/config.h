/* config: the gateway's settings from flags and their environment twins
 * (GATEWAY_<FLAG>); a flag wins over its twin. */
#ifndef GATEWAY_CONFIG_H
#define GATEWAY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "log.h"

/* Gateway ids end up in Redis keys and presence entries. */
#define GATEWAY_ID_MAX 64

/* Where the Redis password came from, for errors and logs. */
enum config_secret_from {
    CONFIG_SECRET_NONE,
    CONFIG_SECRET_URL,
    CONFIG_SECRET_ENV,
    CONFIG_SECRET_FILE
};

/* The environment variable that holds the Redis password. It has no flag:
 * a flag would put the secret in the process list. */
#define CONFIG_REDIS_PASSWORD_ENV "GATEWAY_REDIS_PASSWORD"
/* The largest database number --redis takes: Redis keeps it in an int. */
#define CONFIG_REDIS_DB_MAX 2147483647u

/* The server API's key: at least 16 bytes, so that guessing it is hopeless. */
#define CONFIG_API_KEY_MIN 16
#define CONFIG_API_KEY_MAX 255
/* redis+sentinel://: at most this many sentinels, asked in turn; Sentinel's
 * own default port when one has none; the master name's longest. */
#define CONFIG_SENTINELS_MAX 16
#define CONFIG_SENTINEL_PORT 26379
#define CONFIG_MASTER_NAME_MAX 128
/* The environment variable that holds the sentinels' own password (their
 * requirepass); like CONFIG_REDIS_PASSWORD_ENV, no flag. */
#define CONFIG_REDIS_SENTINEL_PASSWORD_ENV "GATEWAY_REDIS_SENTINEL_PASSWORD"

struct config_address {
    char host[256];
    int port;
};

struct config {
    char listen_host[256];
    int listen_port;
    bool redis_enabled;
    /* redis[s]://: the one server. redis[s]+sentinel://: "" and 0, the
     * primary being whatever the sentinels name. */
    char redis_host[256];
    int redis_port;
    /* redis[s]+sentinel://: the sentinels and the master name they are
     * asked about; their own password (never logged) from
     * GATEWAY_REDIS_SENTINEL_PASSWORD or --redis-sentinel-password-file. */
    bool redis_sentinel;
    struct config_address redis_sentinels[CONFIG_SENTINELS_MAX];
    unsigned n_redis_sentinels;
    char redis_master_name[CONFIG_MASTER_NAME_MAX + 1];
    char redis_sentinel_password[512]; /* "": no AUTH to the sentinels */
    enum config_secret_from redis_sentinel_password_from;
    char redis_sentinel_password_file[1024];
    /* Credentials for AUTH: from the URL, GATEWAY_REDIS_PASSWORD or
     * --redis-password-file (one of them). Never printed or logged. */
    char redis_user[256];     /* "": the default user */
    char redis_password[512]; /* "": no AUTH */
    enum config_secret_from redis_password_from;
    char redis_password_file[1024];
    unsigned redis_db; /* SELECTed on the command connection when not 0 */
    /* rediss://: TLS to Redis. The server name is checked against the
     * certificate unless redis_tls_insecure; "" takes the URL's host. */
    bool redis_tls;
    char redis_tls_ca[1024]; /* "": the system's CA store */
    char redis_tls_cert[1024];
    char redis_tls_key[1024];
    char redis_tls_server_name[256];
    bool redis_tls_insecure;
    /* redis+cluster://: Redis Cluster, found through these seeds,
     * "HOST:PORT,HOST:PORT,..." ([v6]:PORT); redis_host and redis_port are
     * the first. */
    bool redis_cluster;
    char redis_seeds[1024];
    char redis_prefix[64];
    unsigned redis_canary_interval_ms; /* subscription canary period and timeout */
    char id[GATEWAY_ID_MAX + 1];
    char client_dir[1024];
    size_t max_message_bytes;
    unsigned ping_interval_ms;
    unsigned pong_timeout_ms;
    size_t send_queue_limit;
    char **allowed_origins; /* owned, n_allowed_origins entries */
    size_t n_allowed_origins;
    unsigned history;
    unsigned shutdown_timeout_ms;
    char jwt_secret[256]; /* "" : no authentication */
    char tls_cert[1024];  /* "" : plain HTTP and WebSocket */
    char tls_key[1024];
    unsigned rate_limit; /* frames per second per connection, 0: off */
    unsigned rate_burst;
    unsigned rate_limit_grace; /* frames before the told retry time that close (1008) */
    unsigned max_rooms;        /* rooms one connection may be in */
    unsigned max_conns_per_ip; /* 0: off */
    unsigned handshake_timeout_ms;
    size_t max_header_bytes;
    bool announce_connections; /* every connect costs a frame per client */
    unsigned dedupe_window_ms; /* how long a chat's cid is remembered; 0: off */
    bool io_uring;             /* fan-out writes batched through io_uring */
    /* The server API (api.h), off while api_listen is "": its own listener,
     * every request with the key of api_key_file (never logged). */
    char api_listen[300];
    char api_host[256];
    int api_port;
    char api_key_file[1024];
    char api_key[CONFIG_API_KEY_MAX + 1];
    unsigned api_max_connections;
    size_t api_max_body_bytes;
    /* Chat, join, leave, connect and disconnect events in one capped Redis
     * stream for backends (<prefix>events), about events_maxlen long. */
    bool events_stream;
    unsigned events_maxlen;
    enum log_level log_level;
};

enum config_result { CONFIG_OK, CONFIG_HELP, CONFIG_ERROR };

enum config_kind {
    CONFIG_LISTEN,
    CONFIG_REDIS,
    CONFIG_STRING,
    CONFIG_ID,
    CONFIG_SIZE,     /* size_t bytes: DIGITS[k|m|g] */
    CONFIG_DURATION, /* unsigned ms: DIGITS[.DDD][ms|s] */
    CONFIG_UINT,     /* unsigned: DIGITS */
    CONFIG_ORIGINS,
    CONFIG_LOGLEVEL,
    CONFIG_BOOL
};

/* One setting, all of it in one row (as Redis's standardConfig): the help
 * text --help prints is the row's help followed by its default and range,
 * so that the text cannot disagree with what is enforced. */
struct config_option {
    const char *flag; /* without the leading "--" */
    const char *env;
    enum config_kind kind;
    size_t offset; /* of the field in struct config */
    size_t size;   /* of the field, for strings */
    /* As it would be written on the command line, parsed (and so range
     * checked) like a given value; NULL: none, or one the help states
     * (--id's comes from --listen, --client-dir's from the build). */
    const char *dflt;
    unsigned long long min, max; /* accepted range of the numeric kinds */
    const char *help;
};

extern const struct config_option config_options[];
extern const size_t config_n_options;

static inline bool config_numeric(const struct config_option *o)
{
    return o->kind == CONFIG_SIZE || o->kind == CONFIG_DURATION || o->kind == CONFIG_UINT;
}
/* The value of a numeric setting in c. */
unsigned long long config_number(const struct config *c, const struct config_option *o);
/* "MIN to MAX" of a numeric setting, as --help and errors show it. */
void config_format_range(const struct config_option *o, char *buf, size_t len);

/* Fills c from defaults, the environment and argv. On CONFIG_ERROR, err
 * holds one line naming the flag, the value and what is allowed. default_client_dir is used when
 * neither
 * --client-dir nor its twin is given. */
enum config_result config_parse(struct config *c, int argc, char **argv,
                                const char *default_client_dir, char *err, size_t errlen);
void config_usage(FILE *out);
void config_free(struct config *c);

/* Value parsers, shared with the tests. Each returns false on a bad value. */
bool config_parse_hostport(const char *s, char *host, size_t hostlen, int *port);
/* redis[s]://[USER[:PASSWORD]@]HOST[:PORT][/DB], with USER and PASSWORD
 * percent-decoded, into c's redis_tls (rediss://), redis_host, redis_port,
 * redis_user, redis_password (redis_password_from set to CONFIG_SECRET_URL
 * when the URL has one) and redis_db; or
 * redis[s]+sentinel://[USER[:PASSWORD]@]HOST[:PORT][,HOST[:PORT]...]/MASTER[/DB]
 * into redis_sentinel, redis_sentinels (port 26379 by default) and
 * redis_master_name instead of redis_host and redis_port (the credentials
 * and the database are the data nodes'). On false, *why says what is wrong,
 * without the password. */
bool config_parse_redis_url(const char *s, struct config *c, const char **why);
/* The Redis URL s as errors may show it: any USER:PASSWORD@ part replaced
 * by "***@". */
void config_redact_url(const char *s, char *buf, size_t len);
bool config_parse_duration_ms(const char *s, unsigned *out);
bool config_parse_size(const char *s, size_t *out);

#endif
