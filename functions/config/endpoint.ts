/**
 * Endpoint configuration: which recipients and senders `/send` may use, size limits, and the public forms.
 * The same schema validates `config/endpoint.json` in the local server and the CDK app (import
 * `EndpointConfigSchema` / `parseEndpointConfig`).
 */
import * as v from 'valibot';
import { lineBreakIn } from '../mime/index.ts';
import type { DeliveryMode } from '../send/queue.ts';
import { DEFAULT_HEADER_LIMITS } from '../send/request.ts';
import type { SendLimits } from '../send/types.ts';
import { AddressPattern, PlainAddress } from './address.ts';
import { EndpointConfigError, parseConfigJson, readEndpointConfigJson } from './endpoint-source.ts';
import { describeIssues, type Issue } from './issues.ts';
import { SmtpServerSchema } from './smtp-server.ts';

export { EndpointConfigError };

const NonEmpty = v.pipe(v.string(), v.trim(), v.nonEmpty('must not be empty'));
const Address = PlainAddress;
/** One address or a list of them (always a list after parsing); each checked by `parseMailbox`. */
const AddressList = v.pipe(
  v.union([v.string(), v.array(v.string())]),
  v.transform((x: string | string[]) => (Array.isArray(x) ? x : [x])),
  v.array(Address),
  v.minLength(1),
);
const Pattern = AddressPattern;
const PositiveInt = v.pipe(v.number(), v.integer('must be an integer'), v.minValue(1, 'must be at least 1'));
const MediaTypePattern = v.pipe(
  v.string(),
  v.regex(
    /^[a-z0-9][\w.+-]*\/(?:\*|[a-z0-9][\w.+-]*)$/u,
    'must be a media type like application/pdf or image/*',
  ),
);
const HttpUrl = v.pipe(
  v.string(),
  v.check((s) => {
    try {
      const u = new URL(s);
      return u.protocol === 'https:' || u.protocol === 'http:';
    } catch {
      return false;
    }
  }, 'must be an absolute http(s) URL'),
);
const Origin = v.pipe(
  v.string(),
  v.check(
    (s) => s === '*' || s === 'null' || /^https?:\/\/[^/\s]+$/u.test(s),
    'must be an origin like https://www.example.com (scheme://host[:port], no path)',
  ),
);

export const FieldRuleSchema = v.strictObject({
  required: v.optional(v.boolean()),
  maxLength: v.optional(PositiveInt),
  type: v.optional(v.picklist(['text', 'email'])),
  label: v.optional(v.string()),
});

export const CaptchaSchema = v.strictObject({
  provider: v.picklist(['turnstile', 'hcaptcha', 'recaptcha']),
  secretId: NonEmpty,
  verifyUrl: v.optional(HttpUrl),
  /**
   * Host names a token may have been solved on (the provider's answer says which). Default: the hosts of the
   * form's `allowedOrigins`. A token solved on any other site is refused.
   */
  hostnames: v.optional(
    v.array(v.pipe(v.string(), v.regex(/^[a-z0-9.-]+$/u, 'must be a lower-case host name'))),
  ),
  /** The widget's `action` (Turnstile, reCAPTCHA v3): the answer must carry exactly this one. */
  action: v.optional(NonEmpty),
});

/**
 * How a request is delivered: `sync` in the request (today's path), `queue` (validated, composed, put on the delivery
 * queue, answered at once), `sync-then-queue` (tried within `delivery.syncBudgetMs`; on a transient failure before
 * anything was handed over, queued instead).
 */
export const DeliveryModeSchema = v.picklist([
  'sync',
  'queue',
  'sync-then-queue',
] as const satisfies readonly DeliveryMode[]);

/** The delivery queue's settings (the CDK construct reads the same section). */
export const DeliverySchema = v.strictObject({
  /** `/send`'s mode. `Prefer: respond-async` asks for `queue`. Default `sync`. */
  send: v.optional(DeliveryModeSchema),
  /** The default mode of the forms (each form may set its own). Default `sync-then-queue`. */
  forms: v.optional(DeliveryModeSchema),
  /**
   * Concurrent SMTP sessions the queue consumer may open (the event source mapping's maximum concurrency; Lambda
   * accepts 2-1000). Default 2.
   */
  maxConnections: v.optional(
    v.pipe(v.number(), v.integer(), v.minValue(2, 'Lambda accepts 2-1000'), v.maxValue(1000)),
  ),
  /** Receives of a queued message before SQS moves it to the dead-letter queue. Default 8. */
  maxReceives: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(1000))),
  /** How long `sync-then-queue` tries synchronously before it queues. Default 4000 ms. */
  syncBudgetMs: v.optional(v.pipe(v.number(), v.integer(), v.minValue(500), v.maxValue(25_000))),
  /**
   * Messages per consumer batch (one SMTP session each: every transaction of the batch in one pipelined write).
   * Default 100; with `maxPerSecond`, what that rate grants in 10 s (1-100), so a paced batch fits its invocation.
   */
  batchSize: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(100))),
  /** Optional account-wide sending rate, shared by every instance (e.g. an SES quota). */
  maxPerSecond: v.optional(v.pipe(v.number(), v.minValue(0.1), v.maxValue(10_000))),
});
export type DeliveryConfig = v.InferOutput<typeof DeliverySchema>;

export const DEFAULT_DELIVERY = {
  send: 'sync',
  forms: 'sync-then-queue',
  maxConnections: 2,
  maxReceives: 8,
  syncBudgetMs: 4000,
  batchSize: 100,
} as const satisfies DeliveryConfig;

/** With `delivery.maxPerSecond`, the default batch is what the rate grants in this many seconds. */
export const PACED_BATCH_SECONDS = 10;

export const FormSchema = v.strictObject({
  to: AddressList,
  cc: v.optional(AddressList),
  bcc: v.optional(AddressList),
  subject: v.pipe(
    v.string(),
    v.nonEmpty('must not be empty'),
    v.check((s) => !lineBreakIn(s), 'must be one line'),
  ),
  fields: v.optional(
    v.record(
      v.pipe(v.string(), v.regex(/^[\w.-]{1,64}$/u, 'field names: letters, digits, _ . -')),
      FieldRuleSchema,
    ),
  ),
  honeypot: v.optional(NonEmpty),
  allowedOrigins: v.optional(v.array(Origin)),
  redirect: v.optional(HttpUrl),
  redirectAllowlist: v.optional(v.array(HttpUrl)),
  attachments: v.optional(
    v.strictObject({
      maxFiles: PositiveInt,
      maxFileBytes: PositiveInt,
      /** Media types the form takes, detected from the content (`application/pdf`, `image/*`). */
      allowedTypes: v.optional(v.array(MediaTypePattern)),
    }),
  ),
  captcha: v.optional(CaptchaSchema),
  /** A repeat of the same submission within this window answers as the first did and sends nothing. */
  dedupeWindowSeconds: v.optional(v.pipe(PositiveInt, v.maxValue(86_400, 'at most 86400 (24 h)'))),
  /** This form's delivery mode. Default: `delivery.forms`. */
  delivery: v.optional(DeliveryModeSchema),
});

/**
 * Size and count limits. Every size, count and length an anonymous request controls has one; the defaults
 * (`DEFAULT_LIMITS`) keep the worst accepted request well inside the function's 256 MB and every answer far below
 * Lambda's 6 MB response limit.
 */
export const LimitsSchema = v.strictObject({
  /** Recipients per message (to + cc + bcc). Default 50. */
  maxRecipients: v.optional(PositiveInt),
  /** Messages per batch. Default 50. */
  maxBatch: v.optional(PositiveInt),
  /**
   * Bytes of `text` and of `html` (each); for a form, the whole urlencoded or JSON body, and every multipart
   * part that is not a file together. Default 1 MiB.
   */
  maxBodyBytes: v.optional(PositiveInt),
  /** Attachment bytes per message (decoded). Default 5 MiB. */
  maxAttachmentBytes: v.optional(PositiveInt),
  /** Largest HTTP request body / invoke payload accepted. Default: derived from the limits above. */
  maxRequestBytes: v.optional(PositiveInt),
  /** Values in one form post (a repeated field counts each time). Default 100. */
  maxFormFields: v.optional(PositiveInt),
  /** Characters in a form field name (and an uploaded file's name: 255). Default 64. */
  maxFieldNameChars: v.optional(PositiveInt),
  /** Extra header fields (`headers`) per message. Default 50. */
  maxHeaders: v.optional(PositiveInt),
  /** Characters in an extra header field's name. Default 64. */
  maxHeaderNameChars: v.optional(PositiveInt),
});

export const EndpointConfigSchema = v.strictObject({
  $schema: v.optional(v.string()),
  smtp: v.optional(SmtpServerSchema),
  send: v.optional(
    v.strictObject({
      allowedRecipients: v.optional(v.array(Pattern)),
      allowedSenders: v.optional(v.array(Pattern)),
    }),
  ),
  limits: v.optional(LimitsSchema),
  idempotency: v.optional(
    v.strictObject({
      /** How long a key's record is kept and replayed. Default 86400 (24 h). */
      ttlSeconds: v.optional(v.pipe(PositiveInt, v.maxValue(30 * 86_400, 'at most 2592000 (30 days)'))),
    }),
  ),
  delivery: v.optional(DeliverySchema),
  forms: v.optional(
    v.record(v.pipe(v.string(), v.regex(/^[\w-]{1,64}$/u, 'form ids: letters, digits, _ and -')), FormSchema),
  ),
});

/** The configuration as written (input of the schema). */
export type EndpointConfigInput = v.InferInput<typeof EndpointConfigSchema>;
/** The configuration after validation (address lists normalised to arrays). */
export type EndpointConfig = v.InferOutput<typeof EndpointConfigSchema>;
export type FormConfig = v.InferOutput<typeof FormSchema>;
export type CaptchaConfig = v.InferOutput<typeof CaptchaSchema>;

export interface Limits extends Required<SendLimits> {
  maxRequestBytes: number;
  maxFormFields: number;
  maxFieldNameChars: number;
}

export const DEFAULT_LIMITS = {
  maxRecipients: 50,
  maxBatch: 50,
  maxBodyBytes: 1024 * 1024,
  maxAttachmentBytes: 5 * 1024 * 1024,
  maxFormFields: 100,
  maxFieldNameChars: 64,
  ...DEFAULT_HEADER_LIMITS,
} as const;

/** Lambda's synchronous invocation payload limit. */
const LAMBDA_PAYLOAD_LIMIT = 6 * 1024 * 1024;

export function resolveLimits(config: EndpointConfig): Limits {
  const l = { ...DEFAULT_LIMITS, ...stripUndefined(config.limits ?? {}) };
  // base64 grows attachments by 4/3; allow text + html bodies and some JSON overhead.
  const derived = Math.ceil((l.maxAttachmentBytes * 4) / 3) + 2 * l.maxBodyBytes + 64 * 1024;
  return {
    maxRecipients: l.maxRecipients,
    maxBatch: l.maxBatch,
    maxBodyBytes: l.maxBodyBytes,
    maxAttachmentBytes: l.maxAttachmentBytes,
    maxRequestBytes: config.limits?.maxRequestBytes ?? Math.min(derived, LAMBDA_PAYLOAD_LIMIT),
    maxFormFields: l.maxFormFields,
    maxFieldNameChars: l.maxFieldNameChars,
    maxHeaders: l.maxHeaders,
    maxHeaderNameChars: l.maxHeaderNameChars,
  };
}

/** `delivery` with its defaults filled in. */
export type ResolvedDelivery = Required<Omit<DeliveryConfig, 'maxPerSecond'>> &
  Pick<DeliveryConfig, 'maxPerSecond'>;

export function resolveDelivery(config: EndpointConfig): ResolvedDelivery {
  const given = stripUndefined(config.delivery ?? {});
  return {
    ...DEFAULT_DELIVERY,
    ...given,
    batchSize: given.batchSize ?? defaultBatchSize(given.maxPerSecond),
  };
}

/**
 * 100: a batch costs one SMTP round trip and a few SQS/DynamoDB calls whatever its size, so larger batches drain a
 * busy queue faster (measured in docs/benchmarks.md); beyond ~100 the server's own time per message dominates. Under
 * a shared rate a batch larger than the rate grants within one invocation only hands records back (each hand-over
 * is a receive toward `maxReceives`), so it is what the rate grants in `PACED_BATCH_SECONDS`.
 */
function defaultBatchSize(maxPerSecond: number | undefined): number {
  const max = DEFAULT_DELIVERY.batchSize;
  if (maxPerSecond === undefined) return max;
  return Math.min(max, Math.max(1, Math.floor(maxPerSecond * PACED_BATCH_SECONDS)));
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, val]) => val !== undefined)) as Partial<T>;
}

/** Validate a parsed JSON value. Throws `EndpointConfigError` naming every bad path. */
export function parseEndpointConfig(value: unknown, source = 'endpoint config'): EndpointConfig {
  const result = v.safeParse(EndpointConfigSchema, value);
  if (!result.success) throw new EndpointConfigError(source, describeIssues(result.issues));
  const config = result.output;
  const extra: Issue[] = [];
  for (const [id, form] of Object.entries(config.forms ?? {})) {
    if (
      form.redirect &&
      form.redirectAllowlist &&
      !matchesRedirectAllowlist(form.redirect, form.redirectAllowlist)
    ) {
      extra.push({ path: `forms.${id}.redirect`, message: 'is not covered by redirectAllowlist' });
    }
    for (const ref of templateFields(form.subject)) {
      if (form.fields && !(ref in form.fields)) {
        extra.push({ path: `forms.${id}.subject`, message: `uses {{${ref}}} which is not in fields` });
      }
    }
  }
  if (extra.length) throw new EndpointConfigError(source, extra);
  return config;
}

/** Parse JSON text then validate. */
export function parseEndpointConfigText(text: string, source = 'endpoint config'): EndpointConfig {
  return parseEndpointConfig(parseConfigJson(text, source), source);
}

/**
 * Read the configuration from the environment: `ENDPOINT_CONFIG` (inline JSON) or `ENDPOINT_CONFIG_FILE`
 * (path; relative paths resolve against `LAMBDA_TASK_ROOT`, else the working directory). Neither → `{}`.
 */
export function loadEndpointConfig(env: NodeJS.ProcessEnv = process.env): EndpointConfig {
  const { value, source } = readEndpointConfigJson(env);
  return parseEndpointConfig(value, source);
}

/** A `{{name}}` reference in a subject template (group 1: the field name). */
export const TEMPLATE_FIELD = /\{\{\s*([\w.-]+)\s*\}\}/gu;

/** `{{name}}` references in a subject template. */
export function templateFields(template: string): string[] {
  return [...template.matchAll(TEMPLATE_FIELD)].map((m) => m[1]!);
}

/**
 * A redirect target is allowed when it starts with an allowlist entry at a boundary: same scheme, host and port,
 * and its path is under the entry's path. Compared on parsed URLs (no `https://good.example.evil.com` tricks).
 */
export function matchesRedirectAllowlist(target: string, allowlist: readonly string[]): boolean {
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    return false;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return false;
  if (url.username || url.password) return false;
  return allowlist.some((entry) => {
    let base: URL;
    try {
      base = new URL(entry);
    } catch {
      return false;
    }
    if (base.origin !== url.origin) return false;
    const prefix = base.pathname.endsWith('/') ? base.pathname : `${base.pathname}`;
    return (
      url.pathname === base.pathname || url.pathname.startsWith(prefix.endsWith('/') ? prefix : `${prefix}/`)
    );
  });
}
