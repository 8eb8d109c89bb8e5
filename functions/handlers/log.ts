/**
 * One structured summary line per invocation: entry point, form id, outcome, stable code, SMTP code + phase,
 * round trips, attempts, duration, recipient DOMAINS only. Never addresses' local parts, bodies or secrets.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { SendError } from '../send/errors.ts';
import type { DeliveryTrace } from '../send/types.ts';
import { type Failed, statusOf } from './failure.ts';

export type EntryPoint =
  | 'http_send'
  | 'http_form'
  | 'http_other'
  | 'http_status'
  | 'eventbridge'
  | 'direct_invoke'
  | 'sqs_redrive'
  | 'sqs_delivery';

export interface InvocationLog {
  entryPoint: EntryPoint;
  formId?: string;
  requestId?: string;
  outcome?:
    | 'sent'
    | 'queued'
    | 'partial'
    | 'spam'
    | 'rejected'
    | 'failed'
    | 'unknown'
    | 'preflight'
    | 'not_found'
    | 'status';
  code?: string;
  status?: number;
  messages?: number;
  /** Per-invocation counts of a batch entry point (SQS redrive: records by disposition). */
  counts?: Record<string, number>;
  /** `field:code` of field errors (never values). */
  fieldErrors?: string[];
  /** Provider hint (provider-hints.ts): what the refusal means, for the operator reading the log. */
  hint?: { code: string; text: string };
  trace: DeliveryTrace;
  started: number;
  /** The answer was replayed from an idempotency record: nothing was sent. */
  replayed?: boolean;
}

export function newInvocationLog(entryPoint: EntryPoint): InvocationLog {
  return { entryPoint, trace: { attempts: 0, roundTrips: 0 }, started: Date.now() };
}

export function noteError(log: InvocationLog, err: Failed): void {
  const status = statusOf(err);
  log.code = err.code;
  log.status = status;
  log.outcome =
    err.code === 'delivery_unknown'
      ? 'unknown'
      : status >= 500 && err.code !== 'smtp_rejected'
        ? 'failed'
        : 'rejected';
  if (err.errors?.length) log.fieldErrors = err.errors.slice(0, 10).map((e) => `${e.field}:${e.code}`);
  if (!(err instanceof SendError)) return;
  if (err.hint) log.hint = { code: err.hint.code, text: err.hint.text };
  if (err.smtp?.code !== undefined) log.trace.smtpCode = err.smtp.code;
  if (err.smtp?.phase) log.trace.smtpPhase = err.smtp.phase;
}

export function writeSummary(logger: Logger, log: InvocationLog, extra: Record<string, unknown> = {}): void {
  const t = log.trace;
  const item: Record<string, unknown> = {
    entryPoint: log.entryPoint,
    formId: log.formId,
    outcome: log.outcome,
    code: log.code,
    status: log.status,
    messages: log.messages,
    fieldErrors: log.fieldErrors,
    hint: log.hint?.code,
    hintText: log.hint?.text,
    smtpCode: t.smtpCode,
    smtpPhase: t.smtpPhase,
    roundTrips: t.roundTrips,
    attempts: t.attempts,
    reused: t.reused,
    secretRefreshed: t.secretRefreshed,
    withoutSmtpUtf8: t.withoutSmtpUtf8,
    recipientDomains: t.recipientDomains,
    sizeBytes: t.size,
    durationMs: Date.now() - log.started,
    replayed: log.replayed,
    recordFailed: t.recordFailed,
    ...log.counts,
    ...extra,
  };
  for (const k of Object.keys(item)) if (item[k] === undefined) delete item[k];
  const msg = `${log.entryPoint} ${log.outcome ?? 'done'}`;
  if (log.outcome === 'unknown' || log.outcome === 'failed' || (log.status ?? 0) >= 500)
    logger.error(msg, item);
  else if (
    log.outcome === 'rejected' ||
    log.outcome === 'partial' ||
    log.outcome === 'spam' ||
    t.recordFailed
  )
    logger.warn(msg, item);
  else logger.info(msg, item);
}
