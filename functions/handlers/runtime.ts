/**
 * Module-scope state of one function instance: endpoint configuration (validated once, at cold start),
 * the secret cache, the warm SMTP session, and the logger. `createRuntime` reads only the env it is given.
 */
import {
  type EndpointConfig,
  EndpointConfigError,
  type Limits,
  loadEndpointConfig,
  type ResolvedDelivery,
  resolveDelivery,
  resolveLimits,
} from '../config/endpoint.ts';
import { SecretStore, secretTtlFromEnv } from '../config/secrets.ts';
import { SecretSmtpSettings } from '../config/smtp-secret.ts';
import { deliveryQueueFromEnv, type SqsDeliveryQueue } from '../queue/sqs-delivery-queue.ts';
import type { DeliverDeps } from '../send/deliver.ts';
import { SendError } from '../send/errors.ts';
import {
  DEFAULT_IDEMPOTENCY_TTL_SECONDS,
  type IdempotencyPolicy,
  type SendRecordStore,
} from '../send/idempotency.ts';
import { SmtpTransport } from '../send/transport.ts';
import { transportOptionsFromEnv } from '../send/transport-options.ts';
import type { SmtpSettings, SmtpSettingsSource } from '../send/types.ts';
import type { TcpOpening } from '../smtp/transport.ts';
import { lazySendRecords } from '../store/lazy.ts';
import { Logger } from './logger.ts';

export interface Runtime {
  logger: Logger;
  /** Undefined when the configuration is broken (`configError` says why). */
  config?: EndpointConfig;
  limits: Limits;
  configError?: EndpointConfigError;
  secrets: SecretStore;
  transport: SmtpTransport;
  deps: DeliverDeps;
  /** Idempotency and message status records; undefined when `IDEMPOTENCY_TABLE_NAME` is not set (turned off). */
  idempotency?: IdempotencyPolicy;
  env: NodeJS.ProcessEnv;
  /** The delivery queue (`DELIVERY_QUEUE_URL`); undefined when the deployment has none. */
  queue?: SqsDeliveryQueue;
  /** `delivery` of the configuration, defaults filled in. */
  delivery: ResolvedDelivery;
}

export interface RuntimeOptions {
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  secrets?: SecretStore;
  /** The records (tests); default: the DynamoDB table `IDEMPOTENCY_TABLE_NAME`, if set. */
  records?: SendRecordStore;
  /** The delivery queue; default: the one the environment names; `null`: none. */
  queue?: SqsDeliveryQueue | null;
}

class MissingSecretId implements SmtpSettingsSource {
  get(): Promise<SmtpSettings> {
    return Promise.reject(new SendError('configuration_error', 'SMTP_SECRET_ID is not set'));
  }
  refresh(): Promise<SmtpSettings> {
    return this.get();
  }
}

export function createRuntime(opts: RuntimeOptions = {}): Runtime {
  const env = opts.env ?? process.env;
  const logger =
    opts.logger ?? new Logger({ serviceName: env.POWERTOOLS_SERVICE_NAME || 'smtp-send-endpoint' });
  let config: EndpointConfig | undefined;
  let configError: EndpointConfigError | undefined;
  try {
    config = loadEndpointConfig(env);
  } catch (e) {
    if (!(e instanceof EndpointConfigError)) throw e;
    configError = e;
    // Fail fast, once, with the exact path and message of every problem.
    logger.error(e.message, { code: 'configuration_error', source: e.source, issues: e.issues });
  }
  const limits = resolveLimits(config ?? {});
  const secrets = opts.secrets ?? new SecretStore({ ttlMs: secretTtlFromEnv(env) });
  const transport = new SmtpTransport(transportOptionsFromEnv(env));
  const secretId = env.SMTP_SECRET_ID?.trim();
  const smtp: SmtpSettingsSource = secretId
    ? new SecretSmtpSettings(secrets, secretId)
    : new MissingSecretId();
  const queue = opts.queue === undefined ? deliveryQueueFromEnv(env) : (opts.queue ?? undefined);
  const deps: DeliverDeps = {
    smtp,
    transport,
    ...(queue ? { queue } : {}),
    policy: {
      limits,
      ...(config?.send?.allowedRecipients ? { allowedRecipients: config.send.allowedRecipients } : {}),
      ...(config?.send?.allowedSenders ? { allowedSenders: config.send.allowedSenders } : {}),
    },
  };
  const rt: Runtime = {
    logger,
    limits,
    secrets,
    transport,
    deps,
    env,
    delivery: resolveDelivery(config ?? {}),
  };
  if (queue) rt.queue = queue;
  const table = env.IDEMPOTENCY_TABLE_NAME?.trim();
  // Region, credentials and AWS_ENDPOINT_URL_DYNAMODB from this runtime's env, never another's.
  const store =
    opts.records ??
    (table ? lazySendRecords({ tableName: table, env }, () => import('./store-chunk.ts')) : undefined);
  if (store) {
    rt.idempotency = {
      store,
      ttlSeconds: config?.idempotency?.ttlSeconds ?? DEFAULT_IDEMPOTENCY_TTL_SECONDS,
    };
  }
  const perSecond = rt.delivery.maxPerSecond;
  if (perSecond !== undefined && store) deps.rate = store.sendRate(perSecond);
  else if (perSecond !== undefined && !configError) {
    // The shared rate lives in the send records table: without it the limit cannot be kept, so nothing is sent.
    configError = new EndpointConfigError('ENDPOINT_CONFIG', [
      { path: 'delivery.maxPerSecond', message: 'needs the send records table (IDEMPOTENCY_TABLE_NAME)' },
    ]);
    logger.error(configError.message, { code: 'configuration_error', source: configError.source });
  }
  // A configuration that cannot be kept (above) serves nothing: every request answers configuration_error.
  if (config && !configError) rt.config = config;
  if (configError) rt.configError = configError;
  return rt;
}

/**
 * Cold start: start what the first request will wait for — the SMTP settings (the secret fetch, and an OAuth token
 * when the secret holds a grant) and, when the configuration names the SMTP server (`smtp`), the connection to it
 * (TCP, TLS, EHLO; AUTH waits for the secret). A failure is the first request's to see: it asks again (a failed
 * fetch is not cached) and connects by itself. `opening`: the TCP connection the entry opened ahead to that server
 * (`connect-ahead.ts`), closed when the configuration turned out to be unusable.
 */
export function prewarm(rt: Runtime, opening?: TcpOpening): void {
  if (rt.config?.smtp) rt.transport.preconnect(rt.config.smtp, opening);
  else opening?.close();
  rt.deps.smtp.get().catch(() => {});
  rt.idempotency?.store.preload?.();
}

/** Throws `configuration_error` when the endpoint configuration failed validation at cold start. */
export function requireConfig(rt: Runtime): EndpointConfig {
  if (rt.config) return rt.config;
  throw new SendError(
    'configuration_error',
    "the endpoint's deployment configuration is invalid (see the function's cold-start log); " +
      'this is not a problem with your request',
  );
}
