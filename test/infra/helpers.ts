/**
 * Shared pieces of the infra tests: temp dirs (removed afterwards), the cdk.json context (so tests synthesize with
 * the same feature flags as `cdk synth`), one prebuilt esbuild bundle of the fixture handler, a sample config.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EndpointConfigInput } from '../../functions/config/endpoint.ts';
import { esbuildTarget } from '../../scripts/build.ts';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const FIXTURE_ENTRY = join(ROOT, 'test', 'infra', 'fixtures', 'handler', 'index.ts');

/** A temp dir under $TMPDIR and its cleanup. */
export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `smtp-infra-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The "context" block of cdk.json (feature flags). */
export function cdkJsonContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(readFileSync(join(ROOT, 'cdk.json'), 'utf8')) as {
    context: Record<string, unknown>;
  };
  return cdkJson.context;
}

/** Bundle the fixture handler once with esbuild (what NodejsFunction would produce) into `dir/index.mjs`. */
export async function buildFixtureBundle(dir: string): Promise<string> {
  const esbuild = await import('esbuild');
  await esbuild.build({
    entryPoints: [FIXTURE_ENTRY],
    outfile: join(dir, 'index.mjs'),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: esbuildTarget(),
    logLevel: 'silent',
  });
  return dir;
}

export const SAMPLE_CONFIG: EndpointConfigInput = {
  send: { allowedRecipients: ['*@example.com'], allowedSenders: ['noreply@example.com'] },
  limits: { maxRecipients: 10 },
  forms: {
    contact: {
      to: ['team@example.com'],
      subject: 'Contact form: {{name}}',
      fields: { name: { required: true, maxLength: 200 }, email: { required: true, type: 'email' } },
      honeypot: '_gotcha',
      allowedOrigins: ['https://www.example.com'],
      redirect: 'https://www.example.com/thanks',
      redirectAllowlist: ['https://www.example.com/'],
      captcha: { provider: 'turnstile', secretId: 'form-captcha' },
    },
    support: {
      to: 'support@example.com',
      subject: 'Support request',
      allowedOrigins: ['https://help.example.com'],
      captcha: {
        provider: 'hcaptcha',
        secretId: 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:support-captcha-AbCdEf',
      },
    },
  },
};

/** A config too large to inline in Lambda's 4 KB environment. */
export function largeConfig(forms = 40): EndpointConfigInput {
  const out: Record<string, NonNullable<EndpointConfigInput['forms']>[string]> = {};
  for (let i = 0; i < forms; i++) {
    out[`form-${i}`] = {
      to: [`team-${i}@example.com`],
      subject: `Form ${i}: {{name}}`,
      fields: { name: { required: true, maxLength: 200 } },
      allowedOrigins: [`https://site-${i}.example.com`],
    };
  }
  return { send: { allowedRecipients: ['*@example.com'] }, forms: out };
}

/**
 * Render an EventBridge input transformer the way EventBridge does: a placeholder inside a JSON string is
 * replaced by the raw value, one outside a string by the JSON value.
 */
export function renderInputTransformer(
  transformer: { InputPathsMap: Record<string, string>; InputTemplate: string },
  event: Record<string, unknown>,
): unknown {
  const valueAt = (path: string): unknown =>
    path
      .replace(/^\$\.?/, '')
      .split('.')
      .filter(Boolean)
      .reduce<unknown>(
        (o, k) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined),
        event,
      );
  const tpl = transformer.InputTemplate;
  let out = '';
  let inString = false;
  for (let i = 0; i < tpl.length; i++) {
    const c = tpl[i]!;
    if (c === '"' && tpl[i - 1] !== '\\') inString = !inString;
    const m = c === '<' ? /^<([\w.-]+)>/.exec(tpl.slice(i)) : null;
    const path = m ? transformer.InputPathsMap[m[1]!] : undefined;
    if (m && path) {
      const value = valueAt(path);
      out += inString ? String(value) : JSON.stringify(value);
      i += m[0].length - 1;
      continue;
    }
    out += c;
  }
  return JSON.parse(out);
}

/** A CloudWatch alarm state change event as EventBridge delivers it. */
export const ALARM_EVENT = {
  version: '0',
  id: 'c4c1c1c9-6542-e61b-6ef0-8c4d36933a92',
  'detail-type': 'CloudWatch Alarm State Change',
  source: 'aws.cloudwatch',
  account: '111122223333',
  time: '2026-11-26T04:00:00Z',
  region: 'eu-west-1',
  resources: ['arn:aws:cloudwatch:eu-west-1:111122223333:alarm:Errors'],
  detail: {
    alarmName: 'SmtpSendEndpoint-Errors',
    state: { value: 'ALARM', reason: 'Threshold Crossed' },
    previousState: { value: 'OK' },
  },
};
