// Limits from PROTOCOL.md, checked before anything is sent so that people get
// a sentence instead of a refused upgrade or an error frame.

const encoder = new TextEncoder();
// C0 controls, DEL and C1 controls.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/u;

function checkName(value, maxBytes, what) {
  if (typeof value !== 'string' || value.length === 0) return `${what} cannot be empty.`;
  if (CONTROL.test(value)) return `${what} cannot contain control characters.`;
  if (value.isWellFormed && !value.isWellFormed()) return `${what} is not valid text.`;
  const bytes = encoder.encode(value).length;
  if (bytes > maxBytes) return `${what} is too long (${bytes} of at most ${maxBytes} bytes).`;
  return null;
}

/** A sentence saying what is wrong with the name, or null when it is fine. */
export function usernameProblem(name) {
  return checkName(name, 32, 'A name');
}

export function roomProblem(room) {
  return checkName(room, 64, 'A room name');
}
