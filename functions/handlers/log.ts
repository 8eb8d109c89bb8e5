/**
 * One structured summary line per invocation: entry point, form id, outcome, stable code, SMTP code + phase,
 * round trips, attempts, duration, recipient DOMAINS only. Never addresses' local parts, bodies or secrets.
 */

import { SendError } from '../send/errors.ts';
import type { DeliveryTrace } from '../send/types.ts';
import { type Failed, statusOf } from './failure.ts';
import type { Logger } from './logger.ts';
import type { Runtime } from './runtime.ts';

export type EntryPoint =
  | 'http_send'
  | 'http_form'
  | 'http_other'
  | 'http_status'
  | 'eventbridge'
  | 'direct_invoke'
  | 'sqs_redrive'
  | 'sqs_delivery';

export type OutcomeKind =
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

/** What an entry point decided about its invocation: the summary line's own fields (the trace is the use case's). */
export interface InvocationOutcome {
  /** A refinement of the classified entry point (`http_other` → `http_form`, `sqs_redrive` → `sqs_delivery`). */
  entryPoint?: EntryPoint;
  formId?: string;
  outcome?: OutcomeKind;
  code?: string;
  status?: number;
  messages?: number;
  /** Per-invocation counts of a batch entry point (SQS: records by disposition). */
  counts?: Record<string, number>;
  /** `field:code` of field errors (never values). */
  fieldErrors?: string[];
  /** Provider hint (provider-hints.ts): what the refusal means, for the operator reading the log. */
  hint?: { code: string; text: string };
  /** The failure's SMTP reply code and phase (when it came from the server). */
  smtpCode?: number;
  smtpPhase?: string;
  /** The answer was replayed from an idempotency record: nothing was sent. */
  replayed?: boolean;
}

/** An entry point's result: its answer (or the error Lambda must see thrown) and its outcome, never a log write. */
export type Handled<R = unknown> = Answered<R> | { thrown: Error; outcome: InvocationOutcome };

/** An entry point that never throws (the SQS ones: a throw would return the whole batch) answers this. */
export type Answered<R> = { response: R; outcome: InvocationOutcome };

/** What an entry point is handed besides its input: the runtime, its time, the trace the use case fills. */
export interface Invocation {
  rt: Runtime;
  remainingMs: () => number;
  trace: DeliveryTrace;
  entryPoint: EntryPoint;
  requestId?: string;
}

/** The summary line's state: who, since when, the trace, and the outcome the entry point returned. */
export interface InvocationLog extends InvocationOutcome {
  entryPoint: EntryPoint;
  requestId?: string;
  trace: DeliveryTrace;
  started: number;
}

export function newInvocationLog(entryPoint: EntryPoint): InvocationLog {
  return { entryPoint, trace: { attempts: 0, roundTrips: 0 }, started: Date.now() };
}

/** The outcome of a failure: its code, status, field errors, hint and SMTP reply. */
export function failureOutcome(err: Failed): InvocationOutcome {
  const status = statusOf(err);
  const o: InvocationOutcome = {
    code: err.code,
    status,
    outcome:
      err.code === 'delivery_unknown'
        ? 'unknown'
        : status >= 500 && err.code !== 'smtp_rejected'
          ? 'failed'
          : 'rejected',
  };
  if (err.errors?.length) o.fieldErrors = err.errors.slice(0, 10).map((e) => `${e.field}:${e.code}`);
  if (!(err instanceof SendError)) return o;
  if (err.hint) o.hint = { code: err.hint.code, text: err.hint.text };
  if (err.smtp?.code !== undefined) o.smtpCode = err.smtp.code;
  if (err.smtp?.phase) o.smtpPhase = err.smtp.phase;
  return o;
}

/** The one summary line of an invocation (written by `createHandler` only). */
export function writeSummary(logger: Logger, log: InvocationLog, extra: Record<string, unknown> = {}): void {
  writeLine(logger, log, extra);
}

/** A line for one record of a batch (the SQS consumer and redrive): the summary's fields for that record. */
export function writeRecordLine(logger: Logger, rec: InvocationLog, fields: Record<string, unknown>): void {
  writeLine(logger, rec, fields);
}

function writeLine(logger: Logger, log: InvocationLog, extra: Record<string, unknown>): void {
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
    smtpCode: log.smtpCode ?? t.smtpCode,
    smtpPhase: log.smtpPhase ?? t.smtpPhase,
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
