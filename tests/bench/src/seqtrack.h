#ifndef CHATBENCH_SEQTRACK_H
#define CHATBENCH_SEQTRACK_H

#include <stdint.h>

/* What one receiver has seen of one publisher's sequence numbers: the next
 * number it expects and a bitmap of the 64 numbers before it, enough to tell
 * a duplicate from a late arrival without keeping every number. */

struct seqwin {
    uint32_t next;
    uint64_t seen; /* bit i: sequence number next - 1 - i arrived */
};

enum seq_verdict {
    SEQ_NEW,  /* first arrival, in order (possibly after a gap) */
    SEQ_LATE, /* first arrival, after a later number: out of order */
    SEQ_DUP,  /* arrived before */
};

enum seq_verdict seq_note(struct seqwin *w, uint32_t seq);

#endif
