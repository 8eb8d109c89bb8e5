/**
 * EventBridge: `detail-type: "Send Email"`, `detail` = the `/send` shape (one message or a batch).
 *
 * Failure policy (Lambda invokes EventBridge targets asynchronously; only a THROWN error is retried and then
 * routed to the on-failure destination / DLQ):
 * - transient failures (`smtp_unavailable`, `captcha_unavailable`): throw `EventDeliveryError` → retried by
 *   Lambda, then the DLQ;
 * - permanent failures (`validation_failed`, `recipient_not_allowed`, `smtp_rejected`, `configuration_error`, an
 *   unknown detail-type...): ALSO throw, so the event lands in the DLQ with its reason instead of vanishing in a
 *   log line (the retries cost two cheap attempts; nothing was sent, so nothing is duplicated);
 * - `delivery_unknown`: do NOT throw (a retry could deliver twice); logged at ERROR with code
 *   `delivery_unknown` and the Message-ID, and returned;
 * - batches: thrown only when no message was accepted or unknown (a retry resends the whole batch); a partly
 *   delivered batch is returned and each failed message is logged at ERROR with `batch_partial_failure`.
 *
 * Direct invoke applies the same policy (`deliverUnderAsyncPolicy`, async-policy.ts): Lambda cannot tell it whether it was
 * invoked synchronously or with `--invocation-type Event`, so it must throw for the asynchronous case too.
 */
import type { EventBridgeEvent } from 'aws-lambda';
import { deliverUnderAsyncPolicy } from './async-policy.ts';
import { SEND_EMAIL_DETAIL_TYPE } from './detail-type.ts';
import type { FailureCode } from './failure.ts';
import type { Handled, Invocation } from './log.ts';

export { SEND_EMAIL_DETAIL_TYPE };

export type SendEmailEvent = EventBridgeEvent<string, unknown>;

export function isEventBridgeEvent(event: unknown): event is SendEmailEvent {
  const e = event as Record<string, unknown> | null;
  return (
    !!e &&
    typeof e === 'object' &&
    typeof e['detail-type'] === 'string' &&
    typeof e.source === 'string' &&
    'detail' in e &&
    typeof e.id === 'string'
  );
}

/** Thrown to make Lambda retry the event and then route it to the on-failure destination. */
export class EventDeliveryError extends Error {
  override readonly name = 'EventDeliveryError';
  constructor(
    readonly code: FailureCode,
    readonly transient: boolean,
    detail: string,
    readonly errors?: unknown,
  ) {
    super(`[${code}] ${detail}`);
  }
}

export async function handleEventBridge(event: SendEmailEvent, inv: Invocation): Promise<Handled> {
  if (event['detail-type'] !== SEND_EMAIL_DETAIL_TYPE) {
    return {
      thrown: new EventDeliveryError(
        'unsupported_event',
        false,
        `detail-type "${String(event['detail-type']).slice(0, 100)}" is not handled; expected "${SEND_EMAIL_DETAIL_TYPE}"`,
      ),
      outcome: { outcome: 'rejected', code: 'unsupported_event' },
    };
  }
  return deliverUnderAsyncPolicy(
    event.detail,
    inv,
    (p) =>
      new EventDeliveryError(
        p.code,
        p.transient,
        p.detail,
        p.errors ?? p.results?.map((r) => ({ index: r.index, status: r.status, code: r.error.code })),
      ),
    { eventId: event.id },
    { scope: 'event', value: event.id },
  );
}
