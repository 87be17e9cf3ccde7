// Who is in the selected room, across the whole cluster.

import { GLOBAL } from '../store.js';
import { byId, fill, h } from './dom.js';
import { colourClass, initial } from './format.js';

export class MembersView {
  #title = byId('members-title');
  #list = byId('member-list');

  render(room, me) {
    if (room.key === GLOBAL) {
      this.#title.textContent = 'Global';
      fill(this.#list, h('li', { className: 'members-note' },
        'Global reaches everyone online. Join a room to see who is in it.'));
      return;
    }
    const users = room.users ?? [];
    this.#title.textContent = room.users ? `In this room · ${users.length}` : 'In this room';
    fill(this.#list, users.map((name) => h('li', { className: name === me ? 'member self' : 'member' },
      h('span', { className: `avatar small ${colourClass(name)}`, attrs: { 'aria-hidden': 'true' } }, initial(name)),
      h('span', { className: 'member-name', attrs: { title: name } }, name),
      name === me ? h('span', { className: 'you' }, 'you') : null)));
  }
}
