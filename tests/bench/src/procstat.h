#ifndef CHATBENCH_PROCSTAT_H
#define CHATBENCH_PROCSTAT_H

#include <sys/types.h>

/* CPU seconds (user + system, all threads) and resident memory of a
 * process, from /proc. Returns 0, or -1 when the process is gone. */
int procstat_read(pid_t pid, double *cpu_s, long *rss_kb);

#endif
