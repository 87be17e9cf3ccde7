// Debian's chromium driven by playwright-core (no browser is ever
// downloaded), and a small page object for the chat client.

import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { ARTIFACTS } from './paths.js';

export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_BIN || '/usr/bin/chromium',
    headless: true,
    timeout: 30000,
    args: ['--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run'],
  });
}

export class ChatPage {
  /** Problems seen on the page: script errors, CSP violations, failed requests, dialogs. */
  problems = [];

  constructor(context, page, gateway) {
    this.context = context;
    this.page = page;
    this.gateway = gateway;
  }

  /** Opens the client served by `gateway` with the given query (username, room). */
  static async open(browser, gateway, { query = {}, viewport = { width: 1280, height: 800 }, colorScheme = 'light' } = {}) {
    const context = await browser.newContext({ viewport, colorScheme, locale: 'en-GB', timezoneId: 'Asia/Tokyo' });
    const page = await context.newPage();
    page.setDefaultTimeout(15000);
    const chat = new ChatPage(context, page, gateway);
    page.on('pageerror', (error) => chat.problems.push(`page error: ${error.message}`));
    page.on('console', (msg) => {
      if (/Content Security Policy|Refused to/i.test(msg.text())) chat.problems.push(`CSP: ${msg.text()}`);
    });
    page.on('response', (response) => {
      if (response.status() >= 400) chat.problems.push(`HTTP ${response.status()} for ${response.url()}`);
    });
    page.on('dialog', (dialog) => {
      chat.problems.push(`dialog opened: ${dialog.message()}`);
      dialog.dismiss().catch(() => {});
    });
    const search = new URLSearchParams(query).toString();
    await page.goto(`${gateway.url}/${search ? `?${search}` : ''}`);
    return chat;
  }

  async waitConnected(timeoutMs = 15000) {
    await this.page.locator('#status[data-state="connected"]').waitFor({ timeout: timeoutMs });
  }

  status() {
    return this.page.locator('#status').getAttribute('data-state');
  }

  async send(text) {
    await this.page.fill('#composer-input', text);
    await this.page.press('#composer-input', 'Enter');
  }

  async selectRoom(room) {
    await this.page.locator(`#room-list li[data-room="${room}"] .room-button`).click();
  }

  /** The chat messages of the open room, as shown. */
  messages() {
    return this.page.$$eval('#message-list li.msg', (items) => items.map((li) => ({
      id: li.dataset.id,
      sender: li.dataset.sender,
      own: li.classList.contains('own'),
      text: li.querySelector('.text').textContent,
    })));
  }

  async waitForMessage(text, timeoutMs = 15000) {
    await this.page.locator('#message-list li.msg .text', { hasText: text }).first().waitFor({ timeout: timeoutMs });
  }

  async members() {
    return this.page.$$eval('#member-list .member-name', (els) => els.map((el) => el.textContent));
  }

  async screenshot(name) {
    mkdirSync(ARTIFACTS, { recursive: true });
    await this.page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
  }

  close() {
    return this.context.close();
  }
}
