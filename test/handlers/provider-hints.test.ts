/**
 * A provider hint through the handler: Exchange Online's `535 5.7.3` (smtp-server answering exactly that) becomes
 * `microsoft_auth_unsuccessful` in the /send problem (IAM callers) and in the invocation log, and is absent from the
 * public form answers (JSON problem and HTML page).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formEvent, sendEvent } from './events.ts';
import { type Harness, startHarness } from './harness.ts';

const REFUSAL = '5.7.3 Authentication unsuccessful [SN4PR0601CA0002.namprd06.prod.outlook.com]';
let h: Harness;

beforeAll(async () => {
  h = await startHarness({
    config: {
      send: { allowedRecipients: ['*@example.com'] },
      forms: { plain: { to: 'team@example.com', subject: 'Plain form' } },
    },
    smtp: {
      extra: {
        onAuth(_auth, _session, cb) {
          cb(Object.assign(new Error(REFUSAL), { responseCode: 535 }));
        },
      },
    },
  });
});
afterAll(() => h?.close());

type Result = { statusCode: number; body: string; headers: Record<string, string> };

describe('provider hints through the handler', () => {
  it('/send (IAM): the problem carries the hint code and its sentence ends the detail; the log has both', async () => {
    const res = (await h.invoke(sendEvent({ to: 'a@example.com', subject: 'x', text: 'y' }))) as Result;
    expect(res.statusCode).toBe(500);
    const p = JSON.parse(res.body);
    expect(p).toMatchObject({
      code: 'configuration_error',
      hint: 'microsoft_auth_unsuccessful',
      // smtp-server puts its own 5.7.8 before the text; the hint still recognises Exchange's 5.7.3 in it.
      smtp: { phase: 'auth', code: 535, hint: 'microsoft_auth_unsuccessful' },
    });
    expect(p.detail).toMatch(/SMTP authentication failed .*SMTP\.SendAsApp/);
    const summary = h.logs.find((l) => l.entryPoint === 'http_send' && l.code === 'configuration_error');
    expect(summary).toMatchObject({ hint: 'microsoft_auth_unsuccessful', smtpCode: 535 });
    expect(String(summary?.hintText)).toMatch(/SMTP\.SendAsApp/);
    expect(h.srv.messages).toHaveLength(0);
  });

  it('a public form: neither the JSON problem nor the HTML page shows the hint', async () => {
    const body = new URLSearchParams({ message: 'hi' }).toString();
    const post = async (accept: string) =>
      (await h.invoke(
        formEvent('plain', {
          headers: { 'content-type': 'application/x-www-form-urlencoded', accept },
          body,
        }),
      )) as Result;
    const json = await post('application/json');
    expect(json.statusCode).toBeGreaterThanOrEqual(500);
    expect(json.body).not.toMatch(/microsoft_auth_unsuccessful|SendAsApp|hint/);
    const page = await post('text/html');
    expect(page.statusCode).toBeGreaterThanOrEqual(500);
    expect(page.body).toMatch(/<html/i);
    expect(page.body).not.toMatch(/microsoft_auth_unsuccessful|SendAsApp/);
  });
});
