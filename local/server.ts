/**
 * `startLocal()`: the whole endpoint on one machine, on 127.0.0.1 — the HTTP API (same routes, same payload 2.0
 * events, THE SAME handler Lambda runs), the mail catcher (STARTTLS + AUTH), the Secrets Manager endpoint the
 * handler finds through `AWS_ENDPOINT_URL_SECRETS_MANAGER`, the demo form and the inbox. Started and stopped
 * together.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseSmtpUrl } from '../functions/cli/smtp-url.ts';
import { parseEndpointConfig, resolveDelivery } from '../functions/config/endpoint.ts';
import { SecretStore, secretTtlFromEnv } from '../functions/config/secrets.ts';
import { createHandler, type LambdaFunction } from '../functions/handlers/create-handler.ts';
import { SEND_EMAIL_DETAIL_TYPE } from '../functions/handlers/detail-type.ts';
import { isJsonObject } from '../functions/send/request.ts';
import { type LocalDelivery, startLocalDelivery } from './delivery.ts';
import { demoPage, thanksPage } from './demo-pages.ts';
import { startLocalDynamoDb } from './dynamodb.ts';
import { PAGE_CSP } from './html.ts';
import {
  fromLambdaResult,
  gatewayError,
  type HttpApiResponse,
  MAX_REQUEST_BYTES,
  matchRoute,
  newRequestId,
  pathHasRoute,
  REQUEST_TIMEOUT_MS,
  readBody,
  snapshotRequest,
  toHttpApiEvent,
  writeHttpApiResponse,
} from './http-api-event.ts';
import { handleInbox, sendJson, sendText } from './inbox.ts';
import { createLambdaContext, DEFAULT_BUDGET_MS } from './lambda-context.ts';
import {
  DEV_SMTP_PASSWORD,
  DEV_SMTP_USER,
  DEV_TLS,
  type MailCatcher,
  startMailCatcher,
} from './mail-catcher.ts';
import { startSecretsManagerEndpoint } from './secrets-manager-endpoint.ts';

const repoRoot = fileURLToPath(new URL('../', import.meta.url));
const publicDir = fileURLToPath(new URL('./public/', import.meta.url));

export const DEFAULT_PORT = 3000;
export const DEFAULT_SMTP_PORT = 2525;
export const LOCAL_HOST = '127.0.0.1';
export const LOCAL_SECRET_ID = 'local/smtp-send-endpoint/smtp';
/** The send records table locally (in dynalite). */
export const SEND_RECORDS_TABLE_NAME = 'smtp-send-records';
export const LOCAL_REGION = 'us-east-1';
/** Where the sample configuration's local URLs point; rewritten to the actual port when it differs. */
const SAMPLE_ORIGINS = ['http://127.0.0.1:3000', 'http://localhost:3000'];
const SAMPLE_PORT = ':3000';

/** Which environment variable picks the port that was busy. */
export class PortInUseError extends Error {
  override readonly name = 'PortInUseError';
  constructor(
    readonly port: number,
    readonly envName: 'PORT' | 'SMTP_PORT',
  ) {
    super(`port ${port} is in use; set ${envName}=… to use another (e.g. ${envName}=${port + 1} npm start)`);
  }
}

/** A local stack's handler: invoked like Lambda's, closed with the stack (its warm SMTP session). */
type LocalHandler = LambdaFunction & { close(): Promise<void> };

export interface RelayOptions {
  /** `smtps://user@host:465` (implicit TLS) or `smtp://user@host:587` (STARTTLS); user percent-decoded. */
  url: string;
  password?: string;
  from?: string;
  /** PEM of extra CA certificates to trust (e.g. a private relay). */
  ca?: string;
}

export interface StartLocalOptions {
  /** HTTP port; 0 = ephemeral. Default 3000. */
  port?: number;
  /** Mail catcher port; 0 = ephemeral. Default 2525. Ignored when relaying. */
  smtpPort?: number;
  /** Relay through a real SMTP server instead of the mail catcher. */
  relay?: RelayOptions;
  /** Endpoint configuration file. Default: `config/endpoint.json`. */
  configFile?: string;
  /** Sender used with the mail catcher. Default: the config's first literal `send.allowedSenders` entry. */
  from?: string;
  /** Messages the inbox keeps. Default 200. */
  inboxLimit?: number;
  /** One line per request / event. Default: none. */
  log?: (line: string) => void;
  /** Function timeout (the HTTP API integration gives up after 30 s). */
  budgetMs?: number;
  /** Time a client has to send a whole request, headers and body (default `REQUEST_TIMEOUT_MS`, HTTP API's 30 s). */
  requestTimeoutMs?: number;
  /** Start with the mail catcher refusing connections (`--smtp-down`): watch the queue take over. */
  smtpDown?: boolean;
  /** The delivery queue's retry backoff (seconds): default 5 … 60. */
  retryBaseSeconds?: number;
  retryMaxSeconds?: number;
}

export interface LocalStack {
  url: string;
  port: number;
  /** Undefined when relaying. */
  smtpPort: number | undefined;
  secretsManagerUrl: string;
  /** dynalite, holding the send records table (idempotency + message status). */
  dynamoDbUrl: string;
  formIds: string[];
  catcher: MailCatcher | undefined;
  /** The delivery queue (local SQS endpoint, S3-protocol server, event source mapping). */
  delivery: LocalDelivery;
  handler: LambdaFunction;
  /** The configuration (JSON) handed to the handler as `ENDPOINT_CONFIG`. */
  endpointConfig: Record<string, unknown>;
  notes: string[];
  banner(): string;
  close(): Promise<void>;
}

type JsonObject = Record<string, unknown>;

function listen(server: Server, port: number, envName: 'PORT' | 'SMTP_PORT'): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(err.code === 'EADDRINUSE' ? new PortInUseError(port, envName) : err);
    };
    server.once('error', onError);
    server.listen(port, LOCAL_HOST, () => {
      server.off('error', onError);
      resolvePort((server.address() as AddressInfo).port);
    });
  });
}

/**
 * The sample configuration, with only what must be local changed: the actual local origins are allowed, local
 * redirect URLs follow the actual port, and CAPTCHA verification is off (no provider can be reached locally).
 */
export function localizeConfig(input: JsonObject, origin: string): { config: JsonObject; notes: string[] } {
  const config = structuredClone(input);
  const notes: string[] = [];
  const localOrigins = [origin, origin.replace('127.0.0.1', 'localhost')];
  const port = origin.slice(origin.lastIndexOf(':'));
  const rewrite = (u: unknown) => {
    if (typeof u !== 'string') return u;
    for (const sample of SAMPLE_ORIGINS) {
      if (u === sample || u.startsWith(`${sample}/`)) {
        return sample.slice(0, -SAMPLE_PORT.length) + port + u.slice(sample.length);
      }
    }
    return u;
  };
  const unique = (list: unknown[]) => [...new Set(list)];
  const forms = isJsonObject(config.forms) ? config.forms : {};
  for (const [id, form] of Object.entries(forms)) {
    if (!isJsonObject(form)) continue;
    if (Array.isArray(form.allowedOrigins)) {
      form.allowedOrigins = unique([...form.allowedOrigins.map(rewrite), ...localOrigins]);
    }
    if (form.redirect !== undefined) form.redirect = rewrite(form.redirect);
    if (Array.isArray(form.redirectAllowlist)) {
      form.redirectAllowlist = unique(form.redirectAllowlist.map(rewrite));
    }
    if (form.captcha !== undefined) {
      delete form.captcha;
      notes.push(`form "${id}": CAPTCHA verification is off locally`);
    }
  }
  return { config, notes };
}

function firstLiteralSender(config: JsonObject): string | undefined {
  const send = isJsonObject(config.send) ? config.send : {};
  const senders = Array.isArray(send.allowedSenders) ? send.allowedSenders : [];
  return senders.find((s): s is string => typeof s === 'string' && !s.includes('*'));
}

/** `smtps://user@host:465` → the SMTP secret's connection fields (the URL read as the CLI's `--url` is). */
export function relaySecret(relay: RelayOptions, fallbackFrom: string | undefined): JsonObject {
  const shape = '--smtp-url must look like smtps://user@host:465 or smtp://user@host:587';
  if (/^[a-z][a-z0-9+.-]*:\/\/[^/@]*:[^/@]*@/iu.test(relay.url)) {
    throw new Error('--smtp-url must not contain the password: set SMTP_PASSWORD instead');
  }
  let url: ReturnType<typeof parseSmtpUrl>;
  try {
    url = parseSmtpUrl(relay.url);
  } catch (e) {
    throw new Error(`${shape} (${(e as Error).message.replace(/^--url:?\s*/u, '')})`);
  }
  if (!url.user)
    throw new Error('--smtp-url needs a user (smtps://user@host:465); the password comes from SMTP_PASSWORD');
  if (!relay.password) throw new Error('set SMTP_PASSWORD to the SMTP password for the --smtp-url user');
  const from = relay.from ?? fallbackFrom;
  if (!from) throw new Error('--from is required with --smtp-url (the sender address the relay accepts)');
  const secret: JsonObject = {
    host: url.host,
    port: url.port,
    security: url.security,
    username: url.user,
    password: relay.password,
    from,
  };
  if (relay.ca) secret.ca = relay.ca;
  return secret;
}

function serveAsset(res: ServerResponse, name: string): boolean {
  const types: Record<string, string> = {
    'style.css': 'text/css; charset=utf-8',
    'demo.js': 'text/javascript; charset=utf-8',
    'inbox.js': 'text/javascript; charset=utf-8',
  };
  const type = types[name];
  if (!type) return false;
  sendText(res, 200, type, readFileSync(`${publicDir}${name}`));
  return true;
}

/** Fill in the EventBridge envelope around a detail (or complete a partial event). */
export function toEventBridgeEvent(body: unknown, region = LOCAL_REGION): JsonObject {
  const isEvent = isJsonObject(body) && ('detail' in body || 'detail-type' in body);
  const given: JsonObject = isEvent ? body : { detail: body };
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': SEND_EMAIL_DETAIL_TYPE,
    source: 'local.smtp-send-endpoint',
    account: '000000000000',
    time: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    region,
    resources: [],
    ...given,
  };
}

/** The configuration file: `configFile` (relative to the working directory) or the repository's own. */
function configPathOf(opts: StartLocalOptions): string {
  if (!opts.configFile) return `${repoRoot}config/endpoint.json`;
  return isAbsolute(opts.configFile) ? opts.configFile : resolve(process.cwd(), opts.configFile);
}

export async function startLocal(opts: StartLocalOptions = {}): Promise<LocalStack> {
  const log = opts.log ?? (() => {});
  const configPath = configPathOf(opts);
  const rawConfig = readConfigFile(configPath);
  const cleanups: Array<() => Promise<void>> = [];
  const closeAll = async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  };

  // 1. The HTTP port first (its number goes into the configuration); requests wait until the stack is ready.
  let ready: ((s: LocalStack) => void) | undefined;
  const stackReady = new Promise<LocalStack>((r) => {
    ready = r;
  });
  const server = httpServer(opts, stackReady, log);
  server.keepAliveTimeout = 5_000;
  const port = await listen(server, opts.port ?? DEFAULT_PORT, 'PORT');
  cleanups.push(() => closeHttpServer(server));
  const origin = `http://${LOCAL_HOST}:${port}`;

  try {
    // 2. Configuration: the shared file, localized, validated with the handler's own schema.
    const { config, notes } = localizeConfig(rawConfig, origin);
    const validated = parseEndpointConfig(config, configPath);
    // 3. The mail catcher or the relay; 4. the secret, served over the Secrets Manager JSON protocol.
    const { catcher, secret } = await startMailSide(opts, config, notes, cleanups);
    const secrets = await startSecretsManagerEndpoint({
      secrets: { [LOCAL_SECRET_ID]: JSON.stringify(secret) },
    });
    cleanups.push(() => secrets.close());

    // 4b. The send records (idempotency + message status): dynalite, a DynamoDB on an in-memory LevelDB store,
    // in this process; the handler's SDK client is pointed at it (AWS_ENDPOINT_URL_DYNAMODB in its env).
    const records = await startLocalDynamoDb(SEND_RECORDS_TABLE_NAME);
    cleanups.push(() => records.close());
    // 4c. The delivery queue: the local SQS endpoint and an S3-protocol server for large messages.
    const delivery = await startDelivery(opts, validated, catcher, notes, cleanups);
    const awsEnv = {
      ...delivery.env,
      AWS_ENDPOINT_URL_DYNAMODB: records.url,
      IDEMPOTENCY_TABLE_NAME: SEND_RECORDS_TABLE_NAME,
    };
    // 5. This stack's own handler: the deployed function's environment, pointed at the local parts.
    const handler = localHandler(config, secrets.url, awsEnv);
    // The warm SMTP session the handler keeps between invocations goes with the rest.
    cleanups.push(() => handler.close());
    // The queue consumer: one function instance per concurrent batch, as Lambda runs them.
    delivery.consume(() => {
      const instance = localHandler(config, secrets.url, awsEnv);
      cleanups.push(() => instance.close());
      return instance;
    });
    const stack: LocalStack = {
      url: origin,
      port,
      smtpPort: catcher?.port,
      secretsManagerUrl: secrets.url,
      formIds: Object.keys(validated.forms ?? {}),
      dynamoDbUrl: records.url,
      catcher,
      delivery,
      handler,
      endpointConfig: config,
      notes,
      banner: () => banner(stack, opts),
      close: closeAll,
    };
    ready!(stack);
    return stack;
  } catch (e) {
    await closeAll();
    throw e;
  }
}

function closeHttpServer(server: Server): Promise<void> {
  return new Promise<void>((r) => {
    server.closeAllConnections();
    server.close(() => r());
  });
}

/**
 * The local HTTP API's server: a client gets HTTP API's time to send a whole request (then 408 and the connection
 * closed); requests wait for the stack to be ready.
 */
function httpServer(
  opts: StartLocalOptions,
  stackReady: Promise<LocalStack>,
  log: (line: string) => void,
): Server {
  const requestTimeout = opts.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  return createServer(
    {
      requestTimeout,
      headersTimeout: Math.min(requestTimeout, 10_000),
      // Node checks the timeouts above on this interval (its default, 30 s, would let a slow client stay that long).
      connectionsCheckingInterval: Math.max(100, Math.min(1000, requestTimeout / 4)),
    },
    (req, res) => {
      stackReady
        .then((s) => routeRequest(req, res, s, opts, log))
        .catch((err: unknown) => {
          log(`local server error: ${(err as Error).message}`);
          if (!res.headersSent) writeHttpApiResponse(res, gatewayError(500, 'Internal Server Error'));
          else res.destroy();
        });
    },
  );
}

function readConfigFile(configPath: string): JsonObject {
  try {
    const parsed: unknown = JSON.parse(readFileSync(configPath, 'utf8'));
    if (!isJsonObject(parsed)) throw new Error('not a JSON object');
    return parsed;
  } catch (e) {
    throw new Error(`cannot read the endpoint configuration ${configPath}: ${(e as Error).message}`);
  }
}

/** The mail catcher (and the secret that points at it), or the secret for the relay. */
async function startMailSide(
  opts: StartLocalOptions,
  config: JsonObject,
  notes: string[],
  cleanups: Array<() => Promise<void>>,
): Promise<{ catcher: MailCatcher | undefined; secret: JsonObject }> {
  if (opts.relay) {
    const secret = relaySecret(opts.relay, opts.from);
    notes.push(
      `relaying to ${opts.relay.url.replace(/^(\w+:\/\/)[^@/]*@/, '$1…@')}: messages are really sent`,
    );
    return { catcher: undefined, secret };
  }
  let catcher: MailCatcher;
  try {
    catcher = await startMailCatcher({
      port: opts.smtpPort ?? DEFAULT_SMTP_PORT,
      host: LOCAL_HOST,
      limit: opts.inboxLimit ?? 200,
    });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new PortInUseError(opts.smtpPort ?? DEFAULT_SMTP_PORT, 'SMTP_PORT');
    }
    throw e;
  }
  cleanups.push(() => catcher.close());
  const secret = {
    host: LOCAL_HOST,
    port: catcher.port,
    security: 'starttls',
    username: DEV_SMTP_USER,
    password: DEV_SMTP_PASSWORD,
    from: opts.from ?? firstLiteralSender(config) ?? 'noreply@example.com',
    fromName: 'smtp-send-endpoint (local)',
    clientName: 'localhost',
    // The DEV-ONLY test CA: the client verifies the catcher's certificate like any other.
    ca: readFileSync(DEV_TLS.caPath, 'utf8'),
  };
  return { catcher, secret };
}

/** The local delivery queue with the configuration's `delivery` settings; `--smtp-down` takes the catcher down. */
async function startDelivery(
  opts: StartLocalOptions,
  validated: ReturnType<typeof parseEndpointConfig>,
  catcher: MailCatcher | undefined,
  notes: string[],
  cleanups: Array<() => Promise<void>>,
): Promise<LocalDelivery> {
  const settings = resolveDelivery(validated);
  const delivery = await startLocalDelivery({
    maxReceives: settings.maxReceives,
    maxConnections: settings.maxConnections,
    batchSize: settings.batchSize,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    ...(opts.retryBaseSeconds !== undefined ? { retryBaseSeconds: opts.retryBaseSeconds } : {}),
    ...(opts.retryMaxSeconds !== undefined ? { retryMaxSeconds: opts.retryMaxSeconds } : {}),
  });
  cleanups.push(() => delivery.close());
  if (opts.smtpDown) {
    if (!catcher)
      throw new Error('--smtp-down takes the local mail catcher down; it cannot take a relay down');
    await catcher.listener.down();
    notes.push('the local SMTP server refuses connections (--smtp-down): form posts are queued');
  }
  return delivery;
}

/** `GET /_local/queue` (what waits on the delivery queue) and `POST /_local/smtp {"down"}` (the inbox button). */
async function serveQueue(
  req: IncomingMessage,
  res: ServerResponse,
  s: LocalStack,
  rawPath: string,
  log: (line: string) => void,
): Promise<boolean> {
  if (rawPath === '/_local/queue' && (req.method === 'GET' || req.method === 'HEAD')) {
    sendJson(res, 200, {
      messages: s.delivery.queued(),
      smtp: s.catcher ? { down: s.catcher.listener.isDown } : null,
    });
    return true;
  }
  if (rawPath !== '/_local/smtp' || req.method !== 'POST') return false;
  if (!s.catcher) {
    sendJson(res, 409, { message: 'relaying: there is no local SMTP server to take down' });
    return true;
  }
  const body = await readBody(req, 1024);
  let down: boolean;
  try {
    down = (JSON.parse(body?.toString('utf8') || '{}') as { down?: unknown }).down === true;
  } catch {
    sendJson(res, 400, { message: 'body must be JSON: {"down": true|false}' });
    return true;
  }
  await s.catcher.listener.set(down);
  log(`local SMTP server ${down ? 'refuses connections' : 'accepts connections again'}`);
  sendJson(res, 200, { down });
  return true;
}

/**
 * A handler of its own for one local stack: the environment the deployed function has (its configuration, its
 * secret id) and a secret store that reads this stack's Secrets Manager endpoint. Nothing goes through
 * `process.env`, so two stacks in one process each serve their own configuration.
 */
function localHandler(
  config: JsonObject,
  secretsManagerUrl: string,
  awsEnv: Record<string, string>,
): LocalHandler {
  const env: NodeJS.ProcessEnv = {
    ...awsEnv,
    AWS_REGION: LOCAL_REGION,
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_ENDPOINT_URL_SECRETS_MANAGER: secretsManagerUrl,
    AWS_LAMBDA_FUNCTION_NAME: 'smtp-send-endpoint-local',
    SMTP_SECRET_ID: LOCAL_SECRET_ID,
    ENDPOINT_CONFIG: JSON.stringify(config),
  };
  return createHandler({ env, secrets: new SecretStore({ ttlMs: secretTtlFromEnv(env), env }) });
}

async function routeRequest(
  req: IncomingMessage,
  res: ServerResponse,
  s: LocalStack,
  opts: StartLocalOptions,
  log: (line: string) => void,
): Promise<void> {
  const started = Date.now();
  const method = req.method ?? 'GET';
  const rawUrl = req.url ?? '/';
  const q = rawUrl.indexOf('?');
  const rawPath = q === -1 ? rawUrl : rawUrl.slice(0, q);
  res.on('finish', () => log(`${method} ${rawPath} → ${res.statusCode} (${Date.now() - started} ms)`));
  const budgetMs = opts.budgetMs ?? DEFAULT_BUDGET_MS;

  // The HTTP API's own routes → the handler, exactly as API Gateway would invoke it.
  const match = matchRoute(method, rawPath);
  if (match) {
    const requestId = newRequestId();
    const body = await readBody(req, MAX_REQUEST_BYTES);
    if (body === undefined) {
      writeHttpApiResponse(res, gatewayError(413, 'Request Entity Too Large', requestId));
      return;
    }
    const event = toHttpApiEvent(snapshotRequest(req, body), match, new Date(), requestId);
    const response = await invokeForHttpApi(s.handler, event, budgetMs, log);
    response.headers.push(['apigw-requestid', requestId]);
    writeHttpApiResponse(res, response);
    return;
  }
  if (pathHasRoute(rawPath)) {
    // HTTP API: a path with routes but none for this method is a plain 404.
    writeHttpApiResponse(res, gatewayError(404, 'Not Found'));
    return;
  }
  if (method === 'POST' && (rawPath === '/_local/events' || rawPath === '/_local/invoke')) {
    await invokeLocal(req, res, s, rawPath, budgetMs, log);
    return;
  }
  if (await serveQueue(req, res, s, rawPath, log)) return;
  if (servePage(req, res, s, rawPath, opts)) return;
  writeHttpApiResponse(res, gatewayError(404, 'Not Found'));
}

/** The local pages: demo form, thank-you page, assets, the inbox, health. False when none matches. */
function servePage(
  req: IncomingMessage,
  res: ServerResponse,
  s: LocalStack,
  rawPath: string,
  opts: StartLocalOptions,
): boolean {
  const isRead = req.method === 'GET' || req.method === 'HEAD' || req.method === undefined;
  if (isRead && rawPath === '/') {
    const form = s.endpointConfig.forms as Record<string, unknown> | undefined;
    const formId = s.formIds.includes('contact') ? 'contact' : (s.formIds[0] ?? 'contact');
    sendHtml(res, demoPage({ formId, form: form?.[formId] as never, formIds: s.formIds }));
    return true;
  }
  if (isRead && rawPath === '/thanks') {
    sendHtml(res, thanksPage());
    return true;
  }
  if (isRead && rawPath.startsWith('/_local/assets/')) {
    if (serveAsset(res, rawPath.slice('/_local/assets/'.length))) return true;
  }
  const inbox = { store: s.catcher?.store, relayDescription: opts.relay?.url, queue: true };
  if (handleInbox(req, res, rawPath, inbox)) return true;
  if (isRead && rawPath === '/_local/health') {
    sendJson(res, 200, { ok: true, formIds: s.formIds, smtpPort: s.smtpPort, pid: process.pid });
    return true;
  }
  return false;
}

/** `POST /_local/events` (an EventBridge event, or its detail) and `/_local/invoke`, with Lambda Invoke answers. */
async function invokeLocal(
  req: IncomingMessage,
  res: ServerResponse,
  s: LocalStack,
  rawPath: string,
  budgetMs: number,
  log: (line: string) => void,
): Promise<void> {
  const body = await readBody(req, 6 * 1024 * 1024);
  let payload: unknown;
  try {
    payload = JSON.parse(body?.toString('utf8') ?? '');
  } catch {
    sendJson(res, 400, { message: 'body must be JSON (an EventBridge event, or just its detail)' });
    return;
  }
  const isEvents = rawPath === '/_local/events';
  const outcome = await invokeDirect(s.handler, isEvents ? toEventBridgeEvent(payload) : payload, budgetMs);
  log(
    `${isEvents ? 'EventBridge event' : 'direct invoke'} → ${outcome.error ? `error ${outcome.error.errorType}` : 'ok'}`,
  );
  // Lambda Invoke semantics: 200, and X-Amz-Function-Error when the function threw.
  sendText(
    res,
    200,
    'application/json; charset=utf-8',
    JSON.stringify(outcome.error ?? outcome.result ?? null, null, 2),
    outcome.error ? { 'x-amz-function-error': 'Unhandled' } : {},
  );
}

function sendHtml(res: ServerResponse, body: string): void {
  // same-origin, not no-referrer: with no-referrer a browser sends `Origin: null` on the form post.
  sendText(res, 200, 'text/html; charset=utf-8', body, {
    'content-security-policy': PAGE_CSP,
    'referrer-policy': 'same-origin',
  });
}

/** Invoke as the HTTP API integration does: 30 s limit (503), a thrown error is a 500. */
export async function invokeForHttpApi(
  handler: LambdaFunction,
  event: unknown,
  budgetMs: number,
  log: (line: string) => void = () => {},
): Promise<HttpApiResponse> {
  try {
    const result = await invokeWithin(handler, event, budgetMs);
    if (result === TIMED_OUT) return gatewayError(503, 'Service Unavailable');
    return fromLambdaResult(result);
  } catch (err) {
    log(`handler threw ${(err as Error)?.name ?? 'an error'}: ${(err as Error)?.message ?? String(err)}`);
    return gatewayError(500, 'Internal Server Error');
  }
}

const TIMED_OUT: unique symbol = Symbol('timed out');

/** Run the handler with a fresh context of `budgetMs`; `TIMED_OUT` when the budget runs out first (throws pass). */
async function invokeWithin(handler: LambdaFunction, event: unknown, budgetMs: number): Promise<unknown> {
  const context = createLambdaContext(budgetMs);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<typeof TIMED_OUT>((r) => {
    // A timer can fire a little before the wall clock says the budget is spent: wait out the rest, so a timed-out
    // invocation's context always reads 0, as the function would see it.
    const check = () => {
      const left = context.getRemainingTimeInMillis();
      if (left > 0) timer = setTimeout(check, left);
      else r(TIMED_OUT);
    };
    timer = setTimeout(check, budgetMs);
  });
  try {
    return await Promise.race([handler(event, context), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The payload Lambda's Invoke API answers for a function error (with `X-Amz-Function-Error: Unhandled`). */
export interface LambdaFunctionError {
  errorType: string;
  errorMessage: string;
  /** The thrown error's `stack`, line by line (Lambda's Node runtime); absent for a timeout. */
  trace?: string[];
}

/**
 * What Lambda's Node runtime reports for a thrown value: an `Error` → `{ errorType: name, errorMessage: message,
 * trace: stack.split('\n') }`; anything else → `{ errorType: typeof value, errorMessage: String(value), trace: [] }`.
 */
export function lambdaFunctionError(thrown: unknown): LambdaFunctionError {
  if (thrown instanceof Error) {
    return {
      errorType: thrown.name,
      errorMessage: thrown.message,
      trace: typeof thrown.stack === 'string' ? thrown.stack.split('\n') : [],
    };
  }
  return { errorType: typeof thrown, errorMessage: String(thrown), trace: [] };
}

/** Invoke as Lambda's Invoke API does (EventBridge, direct): result, or the error Lambda would report. */
export async function invokeDirect(
  handler: LambdaFunction,
  event: unknown,
  budgetMs: number,
): Promise<{ result?: unknown; error?: LambdaFunctionError }> {
  try {
    const result = await invokeWithin(handler, event, budgetMs);
    if (result === TIMED_OUT) {
      return {
        error: {
          errorType: 'Sandbox.Timedout',
          errorMessage: `Task timed out after ${budgetMs / 1000} seconds`,
        },
      };
    }
    return { result };
  } catch (err) {
    return { error: lambdaFunctionError(err) };
  }
}

function banner(s: LocalStack, opts: StartLocalOptions): string {
  const lines = [
    '',
    'smtp-send-endpoint — local (everything on 127.0.0.1; Ctrl+C stops it all)',
    '',
    `  Demo form     ${s.url}/`,
    `  Thank-you     ${s.url}/thanks`,
    `  Inbox         ${s.url}/inbox        JSON: ${s.url}/inbox/api/messages`,
    `  API           POST ${s.url}/send   (locally NO IAM signature is required — the deployed /send needs SigV4)`,
    ...s.formIds.map((id) => `  Form          POST ${s.url}/forms/${id}   (form id "${id}")`),
    `  Events        POST ${s.url}/_local/events   (an EventBridge event, or just its detail)`,
    `  Invoke        POST ${s.url}/_local/invoke   (a direct-invoke payload)`,
    s.smtpPort !== undefined
      ? `  SMTP          ${LOCAL_HOST}:${s.smtpPort}  STARTTLS (DEV-ONLY localhost certificate, certs/dev) + AUTH ${DEV_SMTP_USER}/${DEV_SMTP_PASSWORD}`
      : `  SMTP          relaying to ${(opts.relay?.url ?? '').replace(/^(\w+:\/\/)[^@/]*@/, '$1…@')} (real delivery, nothing caught)`,
    `  Secrets       ${s.secretsManagerUrl}  (AWS_ENDPOINT_URL_SECRETS_MANAGER, secret "${LOCAL_SECRET_ID}")`,
    `  DynamoDB      ${s.dynamoDbUrl}  (dynalite, in memory; AWS_ENDPOINT_URL_DYNAMODB, table "${SEND_RECORDS_TABLE_NAME}")`,
    `  Status        GET ${s.url}/messages/{messageId}   (idempotency: send with an Idempotency-Key header)`,
    `  Queue         ${s.delivery.sqs.url}  (AWS_ENDPOINT_URL_SQS: delivery queue + dead-letter queue; large messages in S3 at ${s.delivery.s3Url})`,
    ...(s.smtpPort !== undefined
      ? [
          `  SMTP down     POST ${s.url}/_local/smtp {"down":true}  (or the button on the inbox page; --smtp-down at start)`,
        ]
      : []),
    `  Forms         ${s.formIds.length > 0 ? s.formIds.join(', ') : '(none configured)'}`,
    ...s.notes.map((n) => `  Note          ${n}`),
    '',
  ];
  return lines.join('\n');
}
