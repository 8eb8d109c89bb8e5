/**
 * End to end in headless Chromium (the system's /usr/bin/chromium via playwright-core — no browser download):
 * the local stack on ephemeral ports, the demo form posted as a plain HTML form (303 → thank-you page), the
 * message read back in the inbox (subject, Reply-To, fields), the live inbox updating on its own, and the fetch
 * variant showing the server's field error for a bad email address.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocal } from '../../local/server.ts';
import { requireTool } from '../support/tools.ts';

const SCREENSHOT = fileURLToPath(new URL('../../docs/img/inbox.png', import.meta.url));
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];

let stack: LocalStack;
let browser: Browser;
const pageErrors: string[] = [];

/** The subject the form's configuration makes from the fields (`Contact form: {{name}}`). */
function expectedSubject(fields: Record<string, string>): string {
  const forms = stack.endpointConfig.forms as Record<string, { subject: string }>;
  return forms.contact!.subject.replace(/\{\{\s*([\w.-]+)\s*\}\}/g, (_, name: string) => fields[name] ?? '');
}

async function newPage(): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    // A 4xx answer to fetch() is logged by Chromium as "Failed to load resource"; that one is expected.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) pageErrors.push(m.text());
  });
  return page;
}

beforeAll(async () => {
  process.env.POWERTOOLS_LOG_LEVEL = 'ERROR';
  stack = await startLocal({ port: 0, smtpPort: 0 });
  browser = await chromium.launch({ executablePath: requireTool('chromium'), args: CHROMIUM_ARGS });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await stack?.close();
});

describe('npm start in a real browser', () => {
  it('plain form → 303 → thank-you page → the message in the inbox with subject, Reply-To and fields', async () => {
    expect(stack.formIds).toContain('contact');
    const page = await newPage();
    await page.goto(`${stack.url}/`);
    const fields = {
      name: 'Ada Lovelace',
      email: 'ada@example.org',
      message: 'Could the Analytical Engine\nsend e-mail?',
    };
    await page.fill('#plain-name', fields.name);
    await page.fill('#plain-email', fields.email);
    await page.fill('#plain-message', fields.message);
    await Promise.all([
      page.waitForURL(`${stack.url}/thanks`),
      page.click('#plain-form button[type="submit"]'),
    ]);
    expect(await page.textContent('h1')).toBe('Thank you!');

    await page.goto(`${stack.url}/inbox`);
    const subject = expectedSubject(fields);
    const item = page.locator('#messages a.msg', { hasText: subject });
    await item.first().waitFor({ timeout: 15_000 });
    await item.first().click();
    await page.waitForURL(/\/inbox\/[0-9a-f-]{36}$/);
    expect(await page.textContent('#subject')).toBe(subject);
    const replyTo = await page.locator('#message-headers tr', { hasText: 'Reply-To' }).textContent();
    expect(replyTo).toContain(fields.email);
    const text = (await page.textContent('#text-body')) ?? '';
    expect(text).toContain(fields.name);
    expect(text).toContain('Could the Analytical Engine');
    expect(text).toContain('send e-mail?');
    const session = await page.locator('#message-headers tr', { hasText: 'Session' }).textContent();
    expect(session).toContain('TLS (STARTTLS)');
    expect(session).toContain('AUTH as dev');
    expect(session).toContain('EHLO localhost');

    if (process.env.UPDATE_SCREENSHOT === '1' || !existsSync(SCREENSHOT)) {
      await page.screenshot({ path: SCREENSHOT, fullPage: false });
    }
    await page.close();
  }, 90_000);

  it('the inbox updates live, and the fetch variant shows inline success and the field error for a bad email', async () => {
    const inbox = await newPage();
    await inbox.goto(`${stack.url}/inbox`);
    await inbox.locator('#live.on').waitFor({ timeout: 15_000 });

    const page = await newPage();
    await page.goto(`${stack.url}/`);
    await page.fill('#fetch-name', 'Grace Hopper');
    await page.fill('#fetch-email', 'not-an-email');
    await page.fill('#fetch-message', 'A bad address');
    await page.click('#fetch-form button[type="submit"]');
    const error = page.locator('#fetch-email-error');
    await error.waitFor({ state: 'visible', timeout: 15_000 });
    expect((await error.textContent())?.length).toBeGreaterThan(0);
    expect(await page.getAttribute('#fetch-email', 'aria-invalid')).toBe('true');
    expect(await page.locator('#fetch-form .field[data-field="email"]').getAttribute('class')).toContain(
      'invalid',
    );
    expect(await page.isVisible('#fetch-name-error')).toBe(false);
    expect(await page.getAttribute('#fetch-result', 'class')).toContain('error');
    expect(page.url()).toBe(`${stack.url}/`);

    await page.fill('#fetch-email', 'grace@example.org');
    await page.click('#fetch-form button[type="submit"]');
    await page.locator('#fetch-result.ok').waitFor({ timeout: 15_000 });
    expect(await page.isVisible('#fetch-email-error')).toBe(false);

    // The inbox page, never reloaded, shows the new message.
    const subject = expectedSubject({ name: 'Grace Hopper' });
    await inbox.locator('#messages a.msg', { hasText: subject }).first().waitFor({ timeout: 15_000 });
    expect(Number(await inbox.textContent('#count'))).toBe(stack.catcher!.store.list().length);
    // …with its status beside it, read from the endpoint's own GET /messages/{messageId}.
    const entry = inbox.locator('#messages li', { hasText: subject }).first();
    await entry.locator('.status[data-state="sent"]').waitFor({ timeout: 15_000 });
    expect(await entry.locator('.status').textContent()).toMatch(/^sent · 250 · 1 attempt · idempotent$/u);
    await inbox.close();
    await page.close();
    expect(pageErrors).toEqual([]);
  }, 90_000);

  it('hostile HTML in a caught message is shown inert: no script runs, in the page or the sandboxed frame', async () => {
    const marker = `hostile-${Date.now()}`;
    const res = await fetch(`${stack.url}/send`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        to: 'team@example.com',
        subject: `<img src=x onerror="document.title='pwned'"> ${marker}`,
        text: '<script>document.title="pwned"</script>',
        html:
          '<p id="visible">Looks harmless</p><script>document.title="pwned";parent.document.title="pwned";alert(1)</script>' +
          '<img src="x" onerror="alert(2)"><a href="javascript:alert(3)">x</a>',
      }),
    });
    expect(res.status).toBe(200);
    const page = await newPage();
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await page.goto(`${stack.url}/inbox`);
    await page.locator('#messages a.msg', { hasText: marker }).first().click();
    await page.waitForURL(/\/inbox\/[0-9a-f-]{36}$/);
    expect(await page.textContent('#subject')).toContain(
      `<img src=x onerror="document.title='pwned'"> ${marker}`,
    );
    const frame = page.frameLocator('iframe.html-body');
    await frame.locator('#visible').waitFor({ timeout: 15_000 });
    await page.waitForTimeout(500);
    expect(dialogs).toEqual([]);
    expect(await page.getAttribute('iframe.html-body', 'sandbox')).toBe('');
    expect(await page.title()).toBe(`<img src=x onerror="document.title='pwned'"> ${marker} · Inbox (local)`);
    const inner = page.frames().find((f) => f.url().endsWith('/html'));
    expect(inner).toBeDefined();
    expect(await inner!.title()).not.toBe('pwned');

    // Clear empties the inbox (and the live list).
    await page.goto(`${stack.url}/inbox`);
    await page.locator('#live.on').waitFor({ timeout: 15_000 });
    await page.click('#clear');
    await page.locator('#messages li.empty').waitFor({ timeout: 15_000 });
    expect(await page.textContent('#count')).toBe('0');
    expect(stack.catcher!.store.list()).toEqual([]);
    await page.close();
  }, 90_000);
});
