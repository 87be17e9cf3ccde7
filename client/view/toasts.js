// Short notices for problems that belong to no message on screen.

import { byId, h } from './dom.js';

const SHOWN_MS = 6000;

export function toast(text) {
  const el = h('div', { className: 'toast', attrs: { role: 'alert' } }, text);
  byId('toasts').append(el);
  setTimeout(() => el.remove(), SHOWN_MS);
}
