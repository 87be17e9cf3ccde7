// The username prompt, shown when the URL has no (valid) ?username=.

import { usernameProblem } from '../validate.js';
import { byId } from './dom.js';

/** Resolves with a valid name once the person submits one. */
export function askUsername({ suggestion = '', problem = null } = {}) {
  const screen = byId('login');
  const form = byId('login-form');
  const input = byId('login-name');
  const error = byId('login-error');
  input.value = suggestion;
  error.textContent = problem ?? '';
  screen.hidden = false;
  input.focus();
  return new Promise((resolve) => {
    form.addEventListener('submit', function onSubmit(event) {
      event.preventDefault();
      const name = input.value.trim();
      const why = usernameProblem(name);
      if (why) {
        error.textContent = why;
        input.focus();
        return;
      }
      form.removeEventListener('submit', onSubmit);
      screen.hidden = true;
      resolve(name);
    });
  });
}
