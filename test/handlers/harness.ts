/**
 * Real parts wired together for handler tests: smtp-server (STARTTLS + AUTH, password changeable for rotation
 * tests), the local Secrets Manager endpoint reached by the real SDK through AWS_ENDPOINT_URL_SECRETS_MANAGER,
 * and a handler instance created with its own env. Logs (Powertools JSON lines on stdout) are captured.
 */
import { type ParsedMail, simpleParser } from 'mailparser';
import { createHandler, type LambdaHandler } from '../../functions/handlers/index.ts';
import type { SendRecordStore } from '../../functions/send/idempotency.ts';
import { createLambdaContext } from '../../local/lambda-context.ts';
import {
  type SecretsManagerEndpoint,
  startSecretsManagerEndpoint,
} from '../../local/secrets-manager-endpoint.ts';
import {
  type ReceivedMessage,
  startSmtpServer,
  TEST_CA,
  TEST_PASSWORD,
  TEST_USER,
  type TestSmtpServer,
  type TestSmtpServerOptions,
} from '../support/smtp-server.ts';

export const SECRET_ID = 'smtp-credentials';

export interface Harness {
  srv: TestSmtpServer;
  sm: SecretsManagerEndpoint;
  handler: LambdaHandler;
  /** The password smtp-server accepts now. */
  password: { current: string };
  logs: Array<Record<string, unknown>>;
  rawLog: string[];
  invoke(event: unknown, timeoutMs?: number): Promise<unknown>;
  parsed(i?: number): Promise<ParsedMail>;
  secret(overrides?: Record<string, unknown>): Record<string, unknown>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  config?: unknown;
  env?: Record<string, string>;
  smtp?: TestSmtpServerOptions;
  secret?: Record<string, unknown>;
  /** The idempotency and status records (default: none, unless `env` names a table). */
  records?: SendRecordStore;
}

export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const password = { current: TEST_PASSWORD };
  const srv = await startSmtpServer({
    ...opts.smtp,
    extra: {
      onAuth(auth, _session, cb) {
        srv.authAttempts.push({ method: auth.method, username: auth.username ?? '' });
        if (auth.username === TEST_USER && auth.password === password.current)
          cb(null, { user: auth.username });
        else cb(Object.assign(new Error('5.7.8 Authentication credentials invalid'), { responseCode: 535 }));
      },
      ...opts.smtp?.extra,
    },
  });
  const secret = (overrides: Record<string, unknown> = {}) => ({
    host: '127.0.0.1',
    port: srv.port,
    security: 'starttls',
    username: TEST_USER,
    password: password.current,
    from: 'noreply@example.com',
    fromName: 'Example Mailer',
    ca: TEST_CA,
    ...opts.secret,
    ...overrides,
  });
  const sm = await startSecretsManagerEndpoint({ secrets: { [SECRET_ID]: secret() } });
  process.env.AWS_REGION = 'us-east-1';
  process.env.AWS_ACCESS_KEY_ID = 'AKIDLOCALTEST';
  process.env.AWS_SECRET_ACCESS_KEY = 'local-test-secret';
  process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = sm.url;

  const logs: Array<Record<string, unknown>> = [];
  const rawLog: string[] = [];
  const capture = (stream: NodeJS.WriteStream) => {
    const write = stream.write.bind(stream);
    stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      let captured = false;
      for (const line of text.split('\n')) {
        if (!line.trim().startsWith('{')) continue;
        try {
          logs.push(JSON.parse(line) as Record<string, unknown>);
          rawLog.push(line);
          captured = true;
        } catch {
          // not a JSON log line
        }
      }
      return captured ? true : (write as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof stream.write;
    return () => {
      stream.write = write;
    };
  };
  // Powertools writes INFO to stdout and WARN/ERROR to stderr.
  const restore = [capture(process.stdout), capture(process.stderr)];

  const handler = createHandler({
    ...(opts.records ? { records: opts.records } : {}),
    env: {
      SMTP_SECRET_ID: SECRET_ID,
      POWERTOOLS_SERVICE_NAME: 'smtp-send-test',
      ...(opts.config !== undefined ? { ENDPOINT_CONFIG: JSON.stringify(opts.config) } : {}),
      ...opts.env,
    },
  });
  return {
    srv,
    sm,
    handler,
    password,
    logs,
    rawLog,
    invoke: (event, timeoutMs = 30_000) => handler(event, createLambdaContext(timeoutMs)),
    parsed: (i = srv.messages.length - 1) => simpleParser(srv.messages[i]!.raw),
    secret,
    async close() {
      for (const r of restore) r();
      await handler.close();
      await sm.close();
      await srv.close();
    },
  };
}

/**
 * A harness for the asynchronous entry points (EventBridge, direct invoke, SQS redrive): `/send` to `*@example.com`,
 * batches of up to 5 (or the `config` given), and an SMTP server that never answers the end of data for
 * recipients starting with "blackhole" (so delivery is unknown).
 */
export async function startBlackholeHarness(
  config: unknown = { send: { allowedRecipients: ['*@example.com'] }, limits: { maxBatch: 5 } },
  env: Record<string, string> = {},
): Promise<Harness> {
  const h: Harness = await startHarness({
    config,
    env,
    smtp: {
      extra: {
        onData(stream, session, cb) {
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('end', () => {
            if (session.envelope.rcptTo.some((r) => r.address.startsWith('blackhole'))) return;
            const msg: ReceivedMessage = {
              envelope: {
                from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
                to: session.envelope.rcptTo.map((r) => r.address),
              },
              raw: Buffer.concat(chunks),
              secure: session.secure,
              mailParams:
                (session.envelope.mailFrom
                  ? (session.envelope.mailFrom.args as Record<string, unknown>)
                  : {}) || {},
              ehlo: session.hostNameAppearsAs,
            };
            h.srv.messages.push(msg);
            cb(null, `Ok: queued as Q${h.srv.messages.length}`);
          });
        },
      },
    },
  });
  return h;
}
