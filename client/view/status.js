// The top bar: connection state with a reconnect countdown, the gateway,
// the cluster-wide count and who you are.

import { byId, fill } from './dom.js';

export class StatusView {
  #el = byId('status');
  #text = byId('status-text');
  #retry = byId('reconnect-now');
  #count = byId('online-count');
  #me = byId('me');
  #countdown = null;

  constructor({ onRetryNow }) {
    this.#retry.addEventListener('click', onRetryNow);
  }

  update({ state, retryAt, gateway, attempt }) {
    clearInterval(this.#countdown);
    this.#el.dataset.state = state;
    this.#retry.hidden = state !== 'reconnecting';
    if (state === 'reconnecting') {
      const tick = () => this.#showCountdown(retryAt);
      tick();
      this.#countdown = setInterval(tick, 250);
      return;
    }
    this.#text.textContent = {
      connecting: attempt > 0 ? 'Reconnecting…' : 'Connecting…',
      connected: gateway ? `Connected · ${gateway}` : 'Connected',
      offline: 'Offline',
      closed: 'Disconnected',
    }[state] ?? state;
    this.#el.title = {
      connected: gateway ? `You are on gateway ${gateway}` : '',
      offline: 'Your device is offline; the chat reconnects when the network is back.',
    }[state] ?? '';
  }

  #showCountdown(retryAt) {
    const seconds = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
    this.#text.textContent = seconds > 0 ? `Reconnecting in ${seconds}s` : 'Reconnecting…';
  }

  setCount(count) {
    this.#count.textContent = Number.isFinite(count) ? `${count} online` : '';
  }

  setMe(username) {
    fill(this.#me, username);
    this.#me.title = `Signed in as ${username}`;
  }
}
