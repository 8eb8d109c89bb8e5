/** An SQS event (the delivery queue's or the dead-letter queue's event source mapping), told apart at dispatch. */
import type { SQSEvent } from 'aws-lambda';
import { isJsonObject } from '../send/request.ts';

export const SQS_EVENT_SOURCE = 'aws:sqs';

export function isSqsEvent(event: unknown): event is SQSEvent {
  const records = (event as { Records?: unknown } | null)?.Records;
  return (
    Array.isArray(records) &&
    records.length > 0 &&
    records.every((r) => isJsonObject(r) && r.eventSource === SQS_EVENT_SOURCE)
  );
}
