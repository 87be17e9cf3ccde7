// Entry point: a name from ?username= or the prompt, then the chat screen,
// opened on ?room= when given. With ?token= (gateways that require a JWT)
// the name comes from the token and there is no prompt.

import { ChatApp } from './chat-app.js';
import { roomProblem, usernameProblem } from './validate.js';
import { askUsername } from './view/login.js';

const LAST_NAME_KEY = 'chat.lastUsername';

async function main() {
  const params = new URLSearchParams(location.search);
  const token = params.get('token');
  const given = params.get('username');
  const problem = given === null ? null : usernameProblem(given);
  let name = problem ? null : given;
  if (name === null && token === null) {
    name = await askUsername({ suggestion: given ?? remembered(), problem });
    remember(name);
  }
  const room = params.get('room');
  new ChatApp({ username: name ?? '', token }).start(room !== null && !roomProblem(room) ? room : null);
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
