#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "bus.h"
#include "config.h"
#include "log.h"
#include "server.h"

#ifndef GATEWAY_DEFAULT_CLIENT_DIR
#define GATEWAY_DEFAULT_CLIENT_DIR "client"
#endif

int main(int argc, char **argv)
{
    struct config cfg;
    char err[512];
    switch (config_parse(&cfg, argc, argv, GATEWAY_DEFAULT_CLIENT_DIR, err, sizeof(err))) {
    case CONFIG_HELP:
        config_usage(stdout);
        config_free(&cfg);
        return 0;
    case CONFIG_ERROR:
        fprintf(stderr, "gateway: %s\n", err);
        config_free(&cfg);
        return 2;
    case CONFIG_OK:
        break;
    }
    log_set_level(cfg.log_level);
    if (!bus_redis_check(&cfg)) {
        config_free(&cfg);
        return 2;
    }
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    int rc = server_run(&cfg);
    config_free(&cfg);
    return rc;
}
