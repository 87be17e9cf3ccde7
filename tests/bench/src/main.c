/* chatbench: load generator for the chat gateway. See tests/bench/README.md. */
#include <stdio.h>
#include <sys/resource.h>

#include "coord.h"
#include "options.h"

int main(int argc, char **argv)
{
    struct options o;
    struct rlimit rl;
    int rc = options_parse(argc, argv, &o);

    if (rc)
        return rc == 1 ? 0 : rc;
    /* Each worker holds up to 19,000 sockets: take the whole hard limit. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl))
            perror("chatbench: setrlimit");
    }
    return coord_run(&o);
}
