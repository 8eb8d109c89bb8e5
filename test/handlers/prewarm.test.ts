/**
 * The function instance (functions/handlers/index.ts → instance.ts) starts its network
 * work as soon as init is over, before any invocation: the secret fetch, and — with the configuration's `smtp`
 * server — the SMTP connection (greeting, EHLO, STARTTLS; no AUTH without the secret's credentials).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type SecretsManagerEndpoint,
  startSecretsManagerEndpoint,
} from '../../local/secrets-manager-endpoint.ts';
import { PIPELINED, type ScriptedServer, startScriptedServer } from '../support/scripted-server.ts';

let sm: SecretsManagerEndpoint;
let smtp: ScriptedServer;

beforeAll(async () => {
  smtp = await startScriptedServer({ extensions: PIPELINED });
  sm = await startSecretsManagerEndpoint({
    secrets: {
      smtp: { host: '127.0.0.1', port: smtp.port, username: 'u', password: 'p', from: 'noreply@example.com' },
    },
  });
  Object.assign(process.env, {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'AKIDLOCALTEST',
    AWS_SECRET_ACCESS_KEY: 'local-test-secret',
    AWS_ENDPOINT_URL_SECRETS_MANAGER: sm.url,
    SMTP_SECRET_ID: 'smtp',
    ENDPOINT_CONFIG: JSON.stringify({
      smtp: { host: '127.0.0.1', port: smtp.port, security: 'starttls', clientName: 'example.com' },
    }),
  });
});

afterAll(async () => {
  await sm.close();
  await smtp.close();
});

describe('the instance prewarm', () => {
  it('fetches the secret and opens the SMTP connection before the first invocation, without AUTH', async () => {
    const { instanceRuntime } = await import('../../functions/handlers/index.ts');
    expect(sm.calls('GetSecretValue', 'smtp')).toBe(0); // nothing inside init itself
    const startedTls = () => smtp.connections[0]?.commands.some((c) => c.startsWith('STARTTLS'));
    for (let i = 0; i < 200 && (sm.calls('GetSecretValue', 'smtp') === 0 || !startedTls()); i++) {
      await sleep(10);
    }
    expect(sm.calls('GetSecretValue', 'smtp')).toBe(1);
    // (The test server's certificate is from the test CA, which only the secret's `ca` would trust: this
    // connection stops at the TLS handshake, and the first send connects as the secret says.)
    const conn = smtp.connections[0]!;
    expect(conn.commands.map((c) => c.split(' ')[0]).slice(0, 2)).toEqual(['EHLO', 'STARTTLS']);
    expect(conn.commands.join('\n')).not.toMatch(/AUTH|MAIL/);
    // The first request reads the settings the prewarm fetched: no second fetch.
    await instanceRuntime.deps.smtp.get();
    expect(sm.calls('GetSecretValue', 'smtp')).toBe(1);
    await instanceRuntime.transport.close();
  });
});
