// At phone width the room list and the member list are panels over the
// conversation, opened from the top bar and the room header.

import { byId } from './dom.js';

export class Layout {
  #roomsButton = byId('toggle-rooms');
  #membersButton = byId('toggle-members');
  #backdrop = byId('backdrop');

  constructor() {
    this.#roomsButton.addEventListener('click', () => this.#toggle('show-rooms', this.#roomsButton));
    this.#membersButton.addEventListener('click', () => this.#toggle('show-members', this.#membersButton));
    this.#backdrop.addEventListener('click', () => this.closePanels());
    document.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') this.closePanels();
    });
  }

  #toggle(className, button) {
    const open = !document.body.classList.contains(className);
    this.closePanels();
    document.body.classList.toggle(className, open);
    button.setAttribute('aria-expanded', String(open));
  }

  closePanels() {
    document.body.classList.remove('show-rooms', 'show-members');
    this.#roomsButton.setAttribute('aria-expanded', 'false');
    this.#membersButton.setAttribute('aria-expanded', 'false');
  }
}
