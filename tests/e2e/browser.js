'use strict';
// Drives the chapter's chat page in a real headless Chromium (Debian's
// `chromium`, through playwright-core; nothing is downloaded).

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');
const { within } = require('./helpers');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

/** Launches headless Chromium; `extraArgs` are added to its command line. */
async function launch(extraArgs = []) {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: run scripts/setup.sh (apt-get install chromium) or set CHROMIUM`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      ...extraArgs,
    ],
  });
}

/**
 * Opens the chat page at `url` in a fresh context and answers its login
 * prompt with `name`. Returns helpers over the page.
 */
async function openChat(browser, url, name) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('dialog', (dialog) => dialog.accept(name));
  await page.goto(url);
  const chat = {
    page,
    /** The chat lines shown, oldest first (the page shows newest on top). */
    lines: () => page.$$eval('#message > div', (divs) => divs.map((d) => d.textContent).reverse()),
    /** Waits until a line equal to `text` is shown. */
    async waitForLine(text) {
      await within(
        page.waitForFunction(
          (t) => [...document.querySelectorAll('#message > div')].some((d) => d.textContent === t),
          text,
          { timeout: 0, polling: 50 },
        ),
        `the line ${JSON.stringify(text)} in ${name}'s page`,
      );
    },
    /** Types a line and presses Enter, as a user does. */
    async type(text) {
      await page.fill('#input', text);
      await page.press('#input', 'Enter');
    },
    close: () => context.close(),
  };
  await chat.waitForLine(`Currently logged in as ${name}`);
  return chat;
}

/** Saves a screenshot under the OS temp dir; returns its path. */
async function screenshot(page, label) {
  const file = path.join(os.tmpdir(), `chathub-${label}.png`);
  await page.screenshot({ path: file });
  return file;
}

/**
 * The chapter's chat as two users do it, in two tabs of `browser` on the
 * page at `url`: ann and bob log in, ann says hello, both join room1 with
 * `/j`, bob speaks there; a screenshot of ann's page is saved under
 * `label`. Then bob closes his tab and ann sees him leave. Returns ann's
 * lines and the screenshot's path.
 */
async function twoTabsChat(browser, url, label) {
  const ann = await openChat(browser, url, 'ann');
  const bob = await openChat(browser, url, 'bob');
  await ann.waitForLine('User bob Logged in');

  await ann.type('hello bob');
  await ann.waitForLine('You said: hello bob');
  await bob.waitForLine('ann said: hello bob');

  await ann.type('/j room1');
  await ann.waitForLine('joined room success!');
  await bob.type('/j room1');
  await bob.waitForLine('joined room success!');
  await bob.type('hi in room1');
  await ann.waitForLine('bob said: hi in room1');
  const shot = await screenshot(ann.page, label);

  await bob.close();
  await ann.waitForLine('User bob disconnected');
  return { lines: await ann.lines(), screenshot: shot };
}

module.exports = { launch, openChat, screenshot, twoTabsChat };
