#ifndef CHATBENCH_WORKER_H
#define CHATBENCH_WORKER_H

#include "options.h"
#include "shared.h"

/* Runs worker number index (of o->workers) in this process: opens its share
 * of the connections, follows the coordinator's phases and leaves its
 * statistics in its slot. Returns the process exit status. */
int worker_main(const struct options *o, struct shared *sh, unsigned index);

#endif
