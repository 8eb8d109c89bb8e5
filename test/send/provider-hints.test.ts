/**
 * Provider hints: a scripted server answers exactly what Microsoft 365, Gmail and Amazon SES are known to answer,
 * the real client and the use case deliver to it, and the failure carries the stable hint code and its sentence —
 * in the problem detail for IAM callers, never in the public (form) problem.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { problemOf } from '../../functions/handlers/http.ts';
import { type DeliverDeps, deliver } from '../../functions/send/deliver.ts';
import { SendError } from '../../functions/send/errors.ts';
import { providerHint } from '../../functions/send/provider-hints.ts';
import { SmtpTransport } from '../../functions/send/transport.ts';
import type { SmtpSettings } from '../../functions/send/types.ts';
import { rejection } from '../support/fixtures.ts';
import { type ScriptedServer, startScriptedServer } from '../support/scripted-server.ts';
import { TEST_CA } from '../support/smtp-server.ts';

interface Case {
  provider: string;
  /** Which command gets the reply: AUTH, MAIL, or the end of data. */
  at: 'AUTH' | 'MAIL' | 'DATA-END';
  reply: string;
  hint: string;
  code: SendError['code'];
}

const OUTLOOK = '[SN4PR0601CA0002.namprd06.prod.outlook.com 2026-12-01T19:00:00.000Z 08DE31A2B4C5D6E7]';
const GSMTP = 'a1-20020a170902b00100b001c9b0e2ab5esm1234567pla.1 - gsmtp';

const CASES: Case[] = [
  {
    provider: 'Microsoft 365',
    at: 'AUTH',
    reply: '550 5.7.30 Basic authentication is not supported for Client Submission.\r\n',
    hint: 'microsoft_basic_auth_disabled',
    code: 'configuration_error',
  },
  {
    provider: 'Microsoft 365',
    at: 'AUTH',
    reply: `535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. ${OUTLOOK}\r\n`,
    hint: 'microsoft_smtp_auth_disabled',
    code: 'configuration_error',
  },
  {
    provider: 'Microsoft 365',
    at: 'AUTH',
    reply: `535 5.7.3 Authentication unsuccessful ${OUTLOOK}\r\n`,
    hint: 'microsoft_auth_unsuccessful',
    code: 'configuration_error',
  },
  {
    provider: 'Microsoft 365',
    at: 'DATA-END',
    reply:
      '554 5.2.252 SendAsDenied; mailer@contoso.com not allowed to send as noreply@example.com; ' +
      'STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed to process message ' +
      `due to a permanent exception with message [BeginDiagnosticData]Cannot submit message. ${OUTLOOK}\r\n`,
    hint: 'microsoft_send_as_denied',
    code: 'smtp_rejected',
  },
  {
    provider: 'Microsoft 365',
    at: 'MAIL',
    reply: '550 5.7.60 SMTP; Client does not have permissions to send as this sender\r\n',
    hint: 'microsoft_send_as_denied',
    code: 'smtp_rejected',
  },
  {
    provider: 'Gmail',
    at: 'AUTH',
    reply:
      '534-5.7.9 Application-specific password required. For more information, go to\r\n' +
      `534 5.7.9  https://support.google.com/mail/?p=InvalidSecondFactor ${GSMTP}\r\n`,
    hint: 'google_app_password_required',
    code: 'configuration_error',
  },
  {
    provider: 'Gmail',
    at: 'AUTH',
    reply:
      '535-5.7.8 Username and Password not accepted. For more information, go to\r\n' +
      `535 5.7.8  https://support.google.com/mail/?p=BadCredentials ${GSMTP}\r\n`,
    hint: 'google_bad_credentials',
    code: 'configuration_error',
  },
  {
    provider: 'Gmail',
    at: 'MAIL',
    reply:
      '421-4.7.0 Try again later, closing connection. (MAIL)\r\n' +
      `421 4.7.0  https://support.google.com/a/answer/3221692 ${GSMTP}\r\n`,
    hint: 'google_rate_limited',
    code: 'smtp_unavailable',
  },
  {
    provider: 'Amazon SES',
    at: 'DATA-END',
    reply:
      '554 Message rejected: Email address is not verified. The following identities failed the check in region ' +
      'EU-WEST-1: noreply@example.com\r\n',
    hint: 'ses_identity_not_verified',
    code: 'smtp_rejected',
  },
  {
    provider: 'Amazon SES',
    at: 'MAIL',
    reply: '454 Throttling failure: Maximum sending rate exceeded.\r\n',
    hint: 'ses_throttled',
    code: 'smtp_unavailable',
  },
  {
    provider: 'Amazon SES',
    at: 'MAIL',
    reply: '454 Throttling failure: Daily message quota exceeded.\r\n',
    hint: 'ses_throttled',
    code: 'smtp_unavailable',
  },
  {
    provider: 'Amazon SES',
    at: 'AUTH',
    reply: '535 Authentication Credentials Invalid\r\n',
    hint: 'ses_bad_credentials',
    code: 'configuration_error',
  },
];

const limits = { maxRecipients: 10, maxBatch: 10, maxBodyBytes: 100_000, maxAttachmentBytes: 100_000 };
const message = { to: 'team@example.com', subject: 'Hello', text: 'Body' };
const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

async function failureFrom(c: Case): Promise<{ err: SendError; srv: ScriptedServer }> {
  const srv = await startScriptedServer({
    // Microsoft and Google announce ENHANCEDSTATUSCODES; SES does not.
    extensions:
      c.provider === 'Amazon SES'
        ? ['8BITMIME', 'AUTH PLAIN LOGIN']
        : ['8BITMIME', 'ENHANCEDSTATUSCODES', 'AUTH PLAIN LOGIN'],
    onCommand: (cmd) => (cmd.toUpperCase().startsWith(c.at) ? { reply: c.reply } : undefined),
    onMessage: () => (c.at === 'DATA-END' ? { reply: c.reply } : undefined),
  });
  open.push(srv);
  const settings: SmtpSettings = {
    connection: {
      host: '127.0.0.1',
      port: srv.port,
      ca: TEST_CA,
      auth: { username: 'mailer@contoso.com', password: 'pw' },
    },
    from: 'noreply@example.com',
    revision: 'fixed',
  };
  const transport = new SmtpTransport({ reuse: false, idleTimeoutMs: 1000 });
  open.push(transport);
  const deps: DeliverDeps = {
    smtp: { get: async () => settings, refresh: async () => settings },
    policy: { limits },
    transport,
    retry: { maxAttempts: 1, baseDelayMs: 10, maxDelayMs: 10, minAttemptMs: 10 },
  };
  const err = await rejection(deliver(message, deps, { deadline: Date.now() + 15_000 }), SendError);
  return { err, srv };
}

describe('a known provider refusal → a stable hint and one sentence', () => {
  for (const c of CASES) {
    it(`${c.provider}: ${c.reply.split('\r\n')[0]!.slice(0, 60)} → ${c.hint}`, async () => {
      const { err, srv } = await failureFrom(c);
      expect(err.code).toBe(c.code);
      expect(err.hint?.code).toBe(c.hint);
      expect(err.smtp?.hint).toBe(c.hint);
      expect(err.toJSON().hint).toEqual({ code: c.hint, message: err.hint!.text });
      // Nothing reached the server when the refusal came before the end of data.
      if (c.at !== 'DATA-END') expect(srv.messages).toHaveLength(0);
      const iam = problemOf(err);
      expect(iam.hint).toBe(c.hint);
      expect(iam.detail).toContain(err.hint!.text);
      const pub = problemOf(err, undefined, 'public');
      expect(pub.hint).toBeUndefined();
      expect(pub.detail).not.toContain(err.hint!.text);
      expect(JSON.stringify(pub)).not.toContain(c.hint);
    });
  }
});

describe('no hint for replies that are not a known provider refusal', () => {
  it.each([
    [{ code: 535, enhancedCode: '5.7.8', serverText: 'Error: authentication failed: wrong password' }],
    [{ code: 421, enhancedCode: '4.7.0', serverText: 'Try again later' }],
    [{ code: 554, serverText: 'Transaction failed' }],
    [{ code: 550, enhancedCode: '5.1.1', serverText: 'No such user' }],
  ])('%j', (reply) => {
    expect(providerHint(reply)).toBeUndefined();
  });
});
