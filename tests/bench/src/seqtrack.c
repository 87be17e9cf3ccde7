#include "seqtrack.h"

enum seq_verdict seq_note(struct seqwin *w, uint32_t seq)
{
    uint32_t back;

    if (seq >= w->next) {
        uint32_t step = seq - w->next + 1;

        w->seen = step >= 64 ? 0 : w->seen << step;
        w->seen |= 1;
        w->next = seq + 1;
        return SEQ_NEW;
    }
    back = w->next - 1 - seq;
    if (back >= 64)
        return SEQ_LATE; /* too old to tell: counted once, as late */
    if (w->seen & (1ull << back))
        return SEQ_DUP;
    w->seen |= 1ull << back;
    return SEQ_LATE;
}
