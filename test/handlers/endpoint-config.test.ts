import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  EndpointConfigError,
  loadEndpointConfig,
  matchesRedirectAllowlist,
  PACED_BATCH_SECONDS,
  parseEndpointConfig,
  resolveDelivery,
  resolveLimits,
} from '../../functions/config/endpoint.ts';
import { parseSmtpSecret } from '../../functions/config/smtp-secret.ts';
import { thrown } from '../support/fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'endpoint-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const issuesOf = (value: unknown) =>
  thrown(() => parseEndpointConfig(value, 'test'), EndpointConfigError).message;

describe('endpoint configuration', () => {
  it('the sample config/endpoint.json is valid', () => {
    const config = loadEndpointConfig({ ENDPOINT_CONFIG_FILE: 'config/endpoint.json' });
    expect(config.forms?.contact?.to).toEqual(['team@example.com']);
  });

  it('inline ENDPOINT_CONFIG wins; a file path resolves against LAMBDA_TASK_ROOT', () => {
    writeFileSync(join(dir, 'endpoint.json'), JSON.stringify({ limits: { maxBatch: 7 } }));
    expect(
      loadEndpointConfig({ ENDPOINT_CONFIG_FILE: 'endpoint.json', LAMBDA_TASK_ROOT: dir }).limits?.maxBatch,
    ).toBe(7);
    expect(
      loadEndpointConfig({
        ENDPOINT_CONFIG: '{"limits":{"maxBatch":3}}',
        ENDPOINT_CONFIG_FILE: 'endpoint.json',
        LAMBDA_TASK_ROOT: dir,
      }).limits?.maxBatch,
    ).toBe(3);
    expect(loadEndpointConfig({})).toEqual({});
  });

  it('a missing file and bad JSON are reported with their source', () => {
    expect(() => loadEndpointConfig({ ENDPOINT_CONFIG_FILE: 'nope.json', LAMBDA_TASK_ROOT: dir })).toThrow(
      /ENDPOINT_CONFIG_FILE=nope\.json.*cannot read .*ENOENT/,
    );
    expect(() => loadEndpointConfig({ ENDPOINT_CONFIG: '{"send": ' })).toThrow(
      /ENDPOINT_CONFIG.*not valid JSON/,
    );
  });

  it('names the exact path of every problem', () => {
    const msg = issuesOf({
      send: { allowedRecipients: ['not a pattern'] },
      limits: { maxBatch: 0, maxRecipients: 2.5 },
      forms: {
        contact: {
          to: 'team-at-example.com',
          subject: 'Hi {{name}}',
          fields: { name: { required: 'yes' } },
          allowedOrigins: ['https://ok.example/path'],
          redirect: 'javascript:alert(1)',
          captcha: { provider: 'recaptcha-v9', secretId: 'x' },
          allowedOrigin: ['typo'],
        },
      },
    });
    expect(msg).toContain('send.allowedRecipients.0');
    expect(msg).toContain('limits.maxBatch: must be at least 1');
    expect(msg).toContain('limits.maxRecipients: must be an integer');
    expect(msg).toContain('forms.contact.to');
    expect(msg).toContain('forms.contact.fields.name.required: expected boolean');
    expect(msg).toContain('forms.contact.allowedOrigins.0');
    expect(msg).toContain('forms.contact.redirect: must be an absolute http(s) URL');
    expect(msg).toContain('forms.contact.captcha.provider');
    expect(msg).toContain('forms.contact.allowedOrigin: unknown key');
  });

  it('configured addresses go through parseMailbox at load: a bad one is named by its path, never echoed', () => {
    const msg = issuesOf({
      send: {
        allowedRecipients: ['*@example.com', 'ops..x@example.com'],
        allowedSenders: ['*@exa mple.com'],
      },
      forms: {
        contact: { to: 'team..x@example.com', subject: 'Hi' },
        other: { to: ['ok@example.com', 'Team <team@example.com>'], cc: 'a@[1.2.3]', subject: 'Hi' },
      },
    });
    expect(msg).toContain('send.allowedRecipients.1: is not a valid address pattern');
    expect(msg).toContain('send.allowedSenders.0');
    expect(msg).toContain('forms.contact.to.0: is not a valid address: local part must be a dot-atom');
    expect(msg).toContain('forms.other.to.1: must be a plain address like name@example.com');
    expect(msg).toContain('forms.other.cc.0: is not a valid address');
    expect(msg).not.toContain('team..x');
    expect(msg).not.toContain('ops..x');
    // Good ones are kept in their wire form (domain lower-cased, IDN as A-labels).
    const ok = parseEndpointConfig({ forms: { f: { to: 'Team@Bücher.Example', subject: 'Hi' } } });
    expect(ok.forms?.f?.to).toEqual(['Team@xn--bcher-kva.example']);
  });

  it('the SMTP secret’s from goes through parseMailbox too', () => {
    const secret = { host: 'smtp.example.com', username: 'u', password: 'p' };
    expect(() => parseSmtpSecret(JSON.stringify({ ...secret, from: 'no..reply@example.com' }))).toThrow(
      /from: is not a valid address/,
    );
    expect(parseSmtpSecret(JSON.stringify({ ...secret, from: 'noreply@EXAMPLE.com' })).from).toBe(
      'noreply@example.com',
    );
  });

  it('cross-field rules: the redirect must be in the allowlist, template fields must exist', () => {
    const msg = issuesOf({
      forms: {
        f: {
          to: ['a@example.com'],
          subject: 'From {{nmae}}',
          fields: { name: {} },
          redirect: 'https://evil.example/thanks',
          redirectAllowlist: ['https://good.example/'],
        },
      },
    });
    expect(msg).toContain('forms.f.redirect: is not covered by redirectAllowlist');
    expect(msg).toContain('forms.f.subject: uses {{nmae}} which is not in fields');
  });

  it('limits have defaults; the request limit is derived and capped at 6 MB', () => {
    expect(resolveLimits({})).toEqual({
      maxRecipients: 50,
      maxBatch: 50,
      maxBodyBytes: 1048576,
      maxAttachmentBytes: 5242880,
      maxRequestBytes: 6 * 1024 * 1024,
      maxFormFields: 100,
      maxFieldNameChars: 64,
      maxHeaders: 50,
      maxHeaderNameChars: 64,
    });
    expect(resolveLimits({ limits: { maxAttachmentBytes: 1000, maxBodyBytes: 1000 } }).maxRequestBytes).toBe(
      1334 + 2000 + 65536,
    );
  });

  it('redirect allowlist compares parsed URLs, not string prefixes', () => {
    const list = ['https://www.example.com/thanks/'];
    expect(matchesRedirectAllowlist('https://www.example.com/thanks/', list)).toBe(true);
    expect(matchesRedirectAllowlist('https://www.example.com/thanks/contact?x=1', list)).toBe(true);
    expect(matchesRedirectAllowlist('https://www.example.com.evil.com/thanks/', list)).toBe(false);
    expect(matchesRedirectAllowlist('https://www.example.com@evil.com/thanks/', list)).toBe(false);
    expect(matchesRedirectAllowlist('//evil.com/thanks/', list)).toBe(false);
    expect(matchesRedirectAllowlist('https://www.example.com/thanksgiving', list)).toBe(false);
    expect(matchesRedirectAllowlist('javascript:alert(1)//https://www.example.com/thanks/', list)).toBe(
      false,
    );
    expect(matchesRedirectAllowlist('http://www.example.com/thanks/', list)).toBe(false);
    expect(matchesRedirectAllowlist('https://user:pw@www.example.com/thanks/', list)).toBe(false);
  });
});

describe('endpoint configuration: smtp (the server a cold start connects to while the secret loads)', () => {
  it('takes a host, an optional port and security, and the EHLO name the secret gives', () => {
    const c = parseEndpointConfig(
      { smtp: { host: 'smtp.example.com', port: 587, security: 'starttls', clientName: 'example.com' } },
      'test',
    );
    expect(c.smtp).toEqual({
      host: 'smtp.example.com',
      port: 587,
      security: 'starttls',
      clientName: 'example.com',
    });
    expect(parseEndpointConfig({ smtp: { host: '127.0.0.1' } }, 'test').smtp).toEqual({ host: '127.0.0.1' });
  });

  it('refuses a server that is not on this host without an EHLO name, clear text, and what is not a host', () => {
    expect(issuesOf({ smtp: { host: 'smtp.example.com' } })).toContain('smtp: clientName is required');
    expect(issuesOf({ smtp: { host: 'smtp.example.com', clientName: 'x', security: 'none' } })).toContain(
      'smtp.security',
    );
    expect(issuesOf({ smtp: { host: 'smtp example.com', clientName: 'example.com' } })).toContain(
      'smtp.host: must be a host name or an IP address',
    );
    expect(issuesOf({ smtp: { host: 'h.example.com', clientName: 'example.com', port: 70000 } })).toContain(
      'smtp.port',
    );
  });
});

describe('delivery.batchSize', () => {
  const batchOf = (delivery: Record<string, unknown>) =>
    resolveDelivery(parseEndpointConfig({ delivery }, 'test')).batchSize;

  it('defaults to 100; a configured size wins', () => {
    expect(batchOf({})).toBe(100);
    expect(batchOf({ batchSize: 25 })).toBe(25);
    expect(batchOf({ batchSize: 7, maxPerSecond: 14 })).toBe(7);
  });

  it(`under maxPerSecond: what the rate grants in ${PACED_BATCH_SECONDS} s, 1 to 100`, () => {
    expect(batchOf({ maxPerSecond: 14 })).toBe(100); // an SES production account
    expect(batchOf({ maxPerSecond: 1 })).toBe(10); // the SES sandbox
    expect(batchOf({ maxPerSecond: 0.5 })).toBe(5); // Microsoft 365: 30 per minute
    expect(batchOf({ maxPerSecond: 0.1 })).toBe(1);
  });
});
