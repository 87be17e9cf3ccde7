#include "procstat.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int read_cpu(pid_t pid, double *cpu_s)
{
    char path[64], buf[1024];
    unsigned long utime, stime;
    const char *p;
    size_t n;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: fields are
     * counted from the last ')'. utime and stime are fields 14 and 15. */
    p = strrchr(buf, ')');
    if (!p || sscanf(p + 2,
                     "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                     "%lu %lu",
                     &utime, &stime) != 2)
        return -1;
    *cpu_s = (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
    return 0;
}

static int read_rss(pid_t pid, long *rss_kb)
{
    char path[64], line[256];
    int found = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", rss_kb) == 1) {
            found = 0;
            break;
        }
    fclose(f);
    return found;
}

int procstat_read(pid_t pid, double *cpu_s, long *rss_kb)
{
    if (read_cpu(pid, cpu_s) || read_rss(pid, rss_kb))
        return -1;
    return 0;
}
