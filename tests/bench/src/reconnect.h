#ifndef CHATBENCH_RECONNECT_H
#define CHATBENCH_RECONNECT_H

#include <stdint.h>

/* The reconnect scenario's side of a worker: members that connect through
 * the load balancer, reconnect with the browser's backoff when their
 * connection closes and rejoin with since; publishers on the surviving
 * gateway that number every room's messages; and, at the end, what each
 * member missed or got twice. worker.c calls these from its handlers. */

struct worker;
struct member;
struct jmsg;

int recon_setup(struct worker *w);
void recon_teardown(struct worker *w);

/* Starts an attempt for mb (a retry is scheduled when it fails at once). */
void recon_connect(struct worker *w, struct member *mb);

void recon_on_open(struct worker *w, struct member *mb, int64_t now);
/* An attempt that never opened: status is the HTTP status, 0 for none. */
void recon_on_refused(struct worker *w, struct member *mb, int status, const char *why);
/* An open connection closed with code. */
void recon_on_closed(struct worker *w, struct member *mb, int code, const char *why);
void recon_on_text(struct worker *w, struct member *mb, const struct jmsg *m);

/* Every tick: publishing, resends, the end of attempts. */
void recon_tick(struct worker *w, int phase, int64_t now);
/* 1 when the drain after PH_CHECK is over. */
int recon_finished(struct worker *w, int phase, int64_t now);
/* Counts what each member missed, into w->st.r. */
void recon_count(struct worker *w);

#endif
