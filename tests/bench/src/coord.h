#ifndef CHATBENCH_COORD_H
#define CHATBENCH_COORD_H

#include "options.h"

/* Forks the workers, moves them through the phases of the scenario, samples
 * the watched processes around the measured window and reports. Returns the
 * process exit status. */
int coord_run(const struct options *o);

#endif
