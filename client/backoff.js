// Reconnect delays: capped exponential backoff with "equal jitter" (half fixed,
// half random). The fixed half keeps a countdown meaningful to people; the
// random half spreads a whole room's reconnects after a gateway restart so
// they do not arrive as one burst.

export const DEFAULT_BACKOFF = Object.freeze({ baseMs: 500, capMs: 15000 });

/** Delay before reconnect attempt number `attempt` (0 for the first). */
export function backoffDelay(attempt, { baseMs, capMs } = DEFAULT_BACKOFF, random = Math.random) {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
