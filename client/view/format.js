// How times, names and rooms are written for people.

import { GLOBAL } from '../store.js';

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'medium' });
const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: 'long', month: 'long', day: 'numeric' });

export function shortTime(ms) {
  return timeFormat.format(ms);
}

export function fullTime(ms) {
  return fullFormat.format(ms);
}

export function dayKey(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}

export function dayLabel(ms, now = Date.now()) {
  const key = dayKey(ms);
  if (key === dayKey(now)) return 'Today';
  if (key === dayKey(now - 86400000)) return 'Yesterday';
  return dayFormat.format(ms);
}

export function roomLabel(key) {
  return key === GLOBAL ? 'Global' : key;
}

/** One of eight avatar colours, stable per name. */
export function colourClass(name) {
  let hash = 0;
  for (const ch of name) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return `c${hash % 8}`;
}

/** First character of a name (a whole code point: Japanese and emoji too). */
export function initial(name) {
  return ([...name][0] ?? '?').toUpperCase();
}
