/**
 * SQS: redriving the dead-letter queue. The function's asynchronous invocations (EventBridge "Send Email",
 * `aws lambda invoke --invocation-type Event`) that still fail after Lambda's retries land in an SQS queue as
 * Lambda destination records (the on-failure destination):
 *
 * ```json
 * { "version": "1.0", "timestamp": "…",
 *   "requestContext": { "requestId", "functionArn", "condition": "RetriesExhausted" | "EventAgeExceeded",
 *                       "approximateInvokeCount" },
 *   "requestPayload": <the original event>,
 *   "responseContext": { "statusCode", "executedVersion", "functionError": "Unhandled" },
 *   "responsePayload": { "errorType", "errorMessage", "trace" } }
 * ```
 *
 * An SQS event source mapping from that queue to this function (disabled until an operator enables it, with
 * `ReportBatchItemFailures`) redrives them: each record's `requestPayload` goes through the SAME path as its
 * original entry point (`handleEventBridge` for an EventBridge event, `handleDirect` for a direct-invoke payload).
 *
 * Per record (the answer is `{ batchItemFailures: [{ itemIdentifier: messageId }] }`):
 * - sent → deleted from the queue;
 * - transient failure (`smtp_unavailable`, not enough time left, …) → listed: it stays for the next receive;
 * - permanent failure (`validation_failed`, `recipient_not_allowed`, `smtp_rejected`, `configuration_error`, a
 *   malformed body, …) → ALSO listed: dropping it would lose it, keeping it is what the queue's own redrive policy
 *   (`maxReceiveCount`) is for — after that many receives SQS moves it to the "parked" queue for a human;
 * - `delivery_unknown` → NOT listed (a retry could deliver it twice): deleted, logged at ERROR;
 * - a batch that was partly delivered → NOT listed (a retry would resend the delivered ones); each failed message
 *   is logged at ERROR with `batch_partial_failure`.
 *
 * Bodies sent to the queue by hand are accepted too: a bare EventBridge event (also what an EventBridge target's
 * own DLQ holds) or a bare `/send` request (also what a classic Lambda `DeadLetterConfig` queue holds). Refusing
 * them would protect nothing: whoever may send to the queue can wrap the same payload in a destination record.
 *
 * The handler never throws: a thrown error would return the WHOLE batch to the queue, delivered records included.
 * One log line per record (`entryPoint: "sqs_redrive"`, `sqsMessageId`, `disposition`, code, SMTP details,
 * recipient domains) and one summary line with the counts; never a body, a subject or an address's local part.
 */
import type { SQSBatchItemFailure, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { DEADLINE_SAFETY_MS } from '../send/deliver.ts';
import { isJsonObject } from '../send/request.ts';
import { DEFAULT_RETRY } from '../send/retry.ts';
import { DirectInvokeError, handleDirect } from './direct.ts';
import { EventDeliveryError, handleEventBridge, isEventBridgeEvent } from './eventbridge.ts';
import { isHttpEvent } from './http.ts';
import {
  type Answered,
  type Invocation,
  type InvocationLog,
  type InvocationOutcome,
  newInvocationLog,
  writeRecordLine,
} from './log.ts';
import { isSqsEvent } from './sqs-event.ts';

/**
 * Do not start a record with less than this left: one SMTP attempt needs `minAttemptMs` before the send deadline,
 * which itself stops `DEADLINE_SAFETY_MS` before Lambda's. A record not started is listed as a failure (retried);
 * a function timeout instead would return the whole batch, delivered records included.
 */
export const MIN_RECORD_BUDGET_MS = DEADLINE_SAFETY_MS + DEFAULT_RETRY.minAttemptMs + 1500;

/** Stable codes of the redrive itself (the use case's codes are used as they are). */
export type RedriveCode =
  /** The body is not JSON, not an object, or a destination record without `requestPayload`. */
  | 'redrive_malformed_body'
  /** The payload is an HTTP API or SQS event: never an asynchronous invocation of this function. */
  | 'redrive_unsupported_payload'
  /** Not started: too little time left in this invocation. Retried. */
  | 'redrive_deadline'
  /** The same original invocation appeared earlier in this batch and was delivered: skipped, deleted. */
  | 'redrive_duplicate';

/**
 * What happens to the SQS message:
 * `sent` deleted · `partial` deleted (a batch partly delivered) · `unknown` deleted (delivery unknown) ·
 * `retry` listed (transient) · `park` listed (permanent; the queue's maxReceiveCount parks it).
 */
export type Disposition = 'sent' | 'partial' | 'unknown' | 'retry' | 'park';

/** A dead-lettered record's provenance: where its payload came from and what the original failure was (for the log; never the payload). */
interface Provenance {
  source: 'destination_record' | 'eventbridge_event' | 'send_request';
  /** The entry point whose path re-processes it. */
  via: 'eventbridge' | 'direct_invoke';
  /** The original asynchronous invocation's request id (destination record or classic DLQ `RequestID`). */
  originalRequestId?: string;
  condition?: string;
  approximateInvokeCount?: number;
  /** `errorType` of the original failure, and its stable code (see `setCode`). */
  originalErrorType?: string;
  originalCode?: string;
  eventId?: string;
}

type Unwrapped =
  | { ok: true; payload: unknown; provenance: Provenance }
  | { ok: false; code: RedriveCode; detail: string };

/** Parse one SQS body into the payload to re-process. Never throws. */
export function unwrapRecord(record: Pick<SQSRecord, 'body' | 'messageAttributes'>): Unwrapped {
  let body: unknown;
  try {
    body = JSON.parse(record.body);
  } catch {
    return { ok: false, code: 'redrive_malformed_body', detail: 'the body is not JSON' };
  }
  if (!isJsonObject(body)) {
    return { ok: false, code: 'redrive_malformed_body', detail: 'the body is not a JSON object' };
  }
  if (isDestinationRecord(body)) {
    if (!('requestPayload' in body) || body.requestPayload === undefined) {
      return {
        ok: false,
        code: 'redrive_malformed_body',
        detail: 'a destination record without requestPayload',
      };
    }
    const rc = body.requestContext as Record<string, unknown>;
    const response = isJsonObject(body.responsePayload) ? body.responsePayload : {};
    const provenance: Provenance = { source: 'destination_record', via: 'direct_invoke' };
    setString(provenance, 'originalRequestId', rc.requestId);
    setString(provenance, 'condition', rc.condition);
    if (typeof rc.approximateInvokeCount === 'number')
      provenance.approximateInvokeCount = rc.approximateInvokeCount;
    setString(provenance, 'originalErrorType', response.errorType);
    setCode(provenance, response.errorMessage, response.errorType);
    return classifyPayload(body.requestPayload, provenance);
  }
  const provenance: Provenance = { source: 'send_request', via: 'direct_invoke' };
  // A classic Lambda DeadLetterConfig queue carries the bare event with these attributes.
  setString(provenance, 'originalRequestId', record.messageAttributes?.RequestID?.stringValue);
  setCode(provenance, record.messageAttributes?.ErrorMessage?.stringValue);
  if (isEventBridgeEvent(body)) provenance.source = 'eventbridge_event';
  return classifyPayload(body, provenance);
}

function classifyPayload(payload: unknown, provenance: Provenance): Unwrapped {
  if (isHttpEvent(payload) || isSqsEvent(payload)) {
    return {
      ok: false,
      code: 'redrive_unsupported_payload',
      detail: `a ${isHttpEvent(payload) ? 'HTTP API' : 'SQS'} event is never an asynchronous invocation; not redriven`,
    };
  }
  if (isEventBridgeEvent(payload)) {
    provenance.via = 'eventbridge';
    provenance.eventId = payload.id.slice(0, 100);
  }
  return { ok: true, payload, provenance };
}

/** Lambda's destination record: `requestContext` with the invocation's condition / function ARN. */
function isDestinationRecord(body: Record<string, unknown>): boolean {
  const rc = body.requestContext;
  return (
    isJsonObject(rc) &&
    !isHttpEvent(body) &&
    (typeof rc.condition === 'string' || typeof rc.functionArn === 'string' || 'requestPayload' in body)
  );
}

export async function handleSqsRedrive(
  event: SQSEvent,
  inv: Invocation,
): Promise<Answered<SQSBatchResponse>> {
  const { rt } = inv;
  const batchItemFailures: SQSBatchItemFailure[] = [];
  const counts: Record<Disposition, number> = { sent: 0, partial: 0, unknown: 0, retry: 0, park: 0 };
  /** Original invocations delivered (or maybe delivered) in this batch: a duplicate is not sent again. */
  const delivered = new Set<string>();
  const domains = new Set<string>();
  let messages = 0;
  for (const record of event.Records) {
    const rec = newInvocationLog('sqs_redrive');
    if (inv.requestId) rec.requestId = inv.requestId;
    const messageId = typeof record.messageId === 'string' ? record.messageId : '';
    const receiveCount = Number(record.attributes?.ApproximateReceiveCount);
    const fields: Record<string, unknown> = {
      sqsMessageId: messageId,
      receiveCount: Number.isFinite(receiveCount) ? receiveCount : undefined,
    };
    let disposition: Disposition;
    try {
      const recInv: Invocation = { ...inv, entryPoint: 'sqs_redrive', trace: rec.trace };
      disposition = await redriveRecord(record, recInv, rec, fields, delivered);
    } catch (e) {
      // A bug, not a request problem: keep the record (the receive count parks it if it keeps failing).
      rt.logger.error('sqs redrive record failed', { error: e as Error, sqsMessageId: messageId });
      rec.outcome = 'failed';
      rec.code = 'internal_error';
      rec.status = 500;
      disposition = 'retry';
    }
    counts[disposition]++;
    inv.trace.attempts += rec.trace.attempts;
    inv.trace.roundTrips += rec.trace.roundTrips;
    messages += rec.messages ?? 0;
    for (const d of rec.trace.recipientDomains ?? []) domains.add(d);
    const failed = disposition === 'retry' || disposition === 'park';
    // A record without a messageId cannot be listed (Lambda would fail the whole batch): logged only.
    if (failed && messageId) batchItemFailures.push({ itemIdentifier: messageId });
    writeRecordLine(rt.logger, rec, { ...fields, disposition, batchItemFailure: failed });
  }
  const records = event.Records.length;
  if (domains.size) inv.trace.recipientDomains = [...domains].slice(0, 20);
  const outcome: InvocationOutcome = {
    messages,
    counts: { records, ...counts, batchItemFailures: batchItemFailures.length },
    outcome: redriveOutcome(counts, records),
  };
  return { response: { batchItemFailures }, outcome };
}

function redriveOutcome(counts: Record<Disposition, number>, records: number): InvocationOutcome['outcome'] {
  return counts.sent === records
    ? 'sent'
    : counts.unknown > 0
      ? 'unknown'
      : counts.sent === 0 && counts.park === 0
        ? 'failed'
        : counts.sent === 0 && counts.retry === 0
          ? 'rejected'
          : 'partial';
}

async function redriveRecord(
  record: SQSRecord,
  inv: Invocation,
  rec: InvocationLog,
  fields: Record<string, unknown>,
  delivered: Set<string>,
): Promise<Disposition> {
  if (inv.remainingMs() < MIN_RECORD_BUDGET_MS) {
    rec.outcome = 'failed';
    rec.code = 'redrive_deadline';
    rec.status = 503;
    return 'retry';
  }
  const u: Unwrapped =
    typeof record.body === 'string'
      ? unwrapRecord(record)
      : { ok: false, code: 'redrive_malformed_body', detail: 'the record has no body' };
  if (!u.ok) {
    rec.outcome = 'rejected';
    rec.code = u.code;
    fields.detail = u.detail;
    return 'park';
  }
  const { provenance, payload } = u;
  Object.assign(fields, provenance);
  const key = provenance.originalRequestId
    ? `request:${provenance.originalRequestId}`
    : provenance.eventId
      ? `event:${provenance.eventId}`
      : undefined;
  if (key && delivered.has(key)) {
    rec.outcome = 'sent';
    rec.code = 'redrive_duplicate';
    return 'sent';
  }
  const disposition = await reprocess(provenance, payload, inv, rec);
  if (key && disposition !== 'retry' && disposition !== 'park') delivered.add(key);
  return disposition;
}

/**
 * Re-process a payload through its original entry point. A thrown `EventDeliveryError` / `DirectInvokeError` is a
 * failure, transient or not (an unexpected `internal_error` from the direct path is retried, as a bug in the
 * EventBridge path is: any other throw is retried by the caller); a return is done.
 */
async function reprocess(
  provenance: Provenance,
  payload: unknown,
  inv: Invocation,
  rec: InvocationLog,
): Promise<Disposition> {
  // The original's key comes along: the event id, or the original invocation's request id.
  const handled =
    provenance.via === 'eventbridge'
      ? await handleEventBridge(payload as Parameters<typeof handleEventBridge>[0], inv)
      : await handleDirect(payload, inv, provenance.originalRequestId);
  Object.assign(rec, handled.outcome);
  if ('thrown' in handled) {
    const e = handled.thrown;
    if (e instanceof EventDeliveryError) return e.transient ? 'retry' : 'park';
    if (e instanceof DirectInvokeError) return e.transient || e.code === 'internal_error' ? 'retry' : 'park';
    throw e;
  }
  return returned(rec);
}

/** Returned: sent, delivery unknown, or a partly delivered batch (each failure logged by the shared policy). */
function returned(rec: InvocationLog): Disposition {
  return rec.outcome === 'sent' ? 'sent' : rec.outcome === 'partial' ? 'partial' : 'unknown';
}

/**
 * The stable code of the original failure: an `EventDeliveryError` message (`[smtp_unavailable] …`), a
 * `DirectInvokeError` message (the problem as JSON, `{"code":"smtp_unavailable",…}`), or its `errorType` (the
 * code itself).
 */
function setCode(o: Provenance, errorMessage: unknown, errorType?: unknown): void {
  const m = typeof errorMessage === 'string' ? /^\[([a-z_]{1,40})\] /u.exec(errorMessage) : null;
  if (m) {
    o.originalCode = m[1]!;
    return;
  }
  if (typeof errorMessage === 'string' && errorMessage.startsWith('{') && errorMessage.length <= 1_000_000) {
    try {
      const code = (JSON.parse(errorMessage) as { code?: unknown } | null)?.code;
      if (typeof code === 'string' && STABLE_CODE.test(code)) {
        o.originalCode = code;
        return;
      }
    } catch {
      // not a DirectInvokeError message
    }
  }
  if (typeof errorType === 'string' && STABLE_CODE.test(errorType)) o.originalCode = errorType;
}

const STABLE_CODE = /^[a-z][a-z_]{0,39}$/u;

function setString<K extends keyof Provenance>(o: Provenance, k: K, v: unknown): void {
  if (typeof v === 'string' && v) (o as unknown as Record<string, unknown>)[k] = v.slice(0, 200);
}
