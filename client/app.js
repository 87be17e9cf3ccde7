// Entry point: a name from ?username= or the prompt, then the chat screen,
// opened on ?room= when given.

import { ChatApp } from './chat-app.js';
import { roomProblem, usernameProblem } from './validate.js';
import { askUsername } from './view/login.js';

const LAST_NAME_KEY = 'chat.lastUsername';

async function main() {
  const params = new URLSearchParams(location.search);
  let name = params.get('username');
  const nameProblem = name === null ? null : usernameProblem(name);
  if (name === null || nameProblem) {
    name = await askUsername({ suggestion: name ?? remembered(), problem: nameProblem });
  }
  remember(name);
  const room = params.get('room');
  new ChatApp(name).start(room !== null && !roomProblem(room) ? room : null);
}

function remembered() {
  try {
    return localStorage.getItem(LAST_NAME_KEY) ?? '';
  } catch {
    return '';
  }
}

function remember(name) {
  try {
    localStorage.setItem(LAST_NAME_KEY, name);
  } catch {
    // Without storage the prompt just starts empty next time.
  }
}

main();
