// Message ids are Redis stream ids, "<milliseconds>-<sequence>". Both parts can
// exceed 2^53 in principle and differ in digit count, so they are compared as
// BigInts, part by part, never as strings.

const ID_PATTERN = /^(\d+)-(\d+)$/;

function parts(id) {
  const m = ID_PATTERN.exec(id);
  if (!m) throw new TypeError(`not a message id: ${id}`);
  return [BigInt(m[1]), BigInt(m[2])];
}

/** Negative, zero or positive, like a sort comparator. */
export function compareIds(a, b) {
  const [am, as] = parts(a);
  const [bm, bs] = parts(b);
  if (am !== bm) return am < bm ? -1 : 1;
  if (as !== bs) return as < bs ? -1 : 1;
  return 0;
}

/** The larger of two ids; either may be null. */
export function maxId(a, b) {
  if (a == null) return b;
  if (b == null) return a;
  return compareIds(a, b) >= 0 ? a : b;
}
