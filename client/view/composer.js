// The message box: Enter sends, Shift+Enter starts a new line, and Enter that
// confirms an IME conversion (Japanese input) never sends.

import { byId } from './dom.js';

// Keeps a frame comfortably under the gateway's 64 KiB default.
const MAX_CHARS = 4000;

export class ComposerView {
  #form = byId('composer');
  #input = byId('composer-input');

  constructor({ onSend }) {
    this.#input.maxLength = MAX_CHARS;
    const submit = () => {
      const text = this.#input.value;
      if (text.trim() === '') return;
      onSend(text);
      this.#input.value = '';
    };
    this.#form.addEventListener('submit', (event) => {
      event.preventDefault();
      submit();
      this.#input.focus();
    });
    this.#input.addEventListener('keydown', (event) => {
      // keyCode 229 is the IME's own Enter in browsers that set isComposing late.
      if (event.key !== 'Enter' || event.shiftKey || event.isComposing || event.keyCode === 229) return;
      event.preventDefault();
      submit();
    });
  }

  setRoom(label) {
    this.#input.placeholder = `Message ${label}`;
  }

  focus() {
    this.#input.focus();
  }
}
