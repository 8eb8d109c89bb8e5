/**
 * An SQS event's records, loaded at the first SQS event (create-handler.ts): the delivery queue's consumer
 * (delivery.ts) and the dead-letter queue's redrive (sqs.ts) are evaluated only in an instance that gets one.
 */
// First the instance's code, as every chunk loaded at first use does (why: handlers/store-chunk.ts).
import './instance.ts';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { isQueuedBody } from '../queue/sqs-delivery-queue.ts';
import { handleDeliveryBatch } from './delivery.ts';
import { type Answered, type Invocation, newInvocationLog, writeRecordLine } from './log.ts';
import { handleSqsRedrive } from './sqs.ts';

/**
 * SQS records: queued messages (the delivery queue, or ones the dead-letter queue redrives) go to the delivery
 * consumer, anything else to the dead-letter redrive; one `batchItemFailures` answer for both. In a mixed batch
 * the redrive's records get a line of their own for their part (the invocation's summary is the consumer's).
 */
export async function handleSqsRecords(
  event: SQSEvent,
  inv: Invocation,
): Promise<Answered<SQSBatchResponse>> {
  const queued = event.Records.filter((r) => isQueuedBody(r.body));
  if (queued.length === 0) return handleSqsRedrive(event, inv);
  const delivery = await handleDeliveryBatch(queued, { ...inv, entryPoint: 'sqs_delivery' });
  const outcome = { ...delivery.outcome, entryPoint: 'sqs_delivery' as const };
  const batchItemFailures = delivery.response;
  const others = event.Records.filter((r) => !isQueuedBody(r.body));
  if (others.length > 0) {
    const part = newInvocationLog('sqs_redrive');
    if (inv.requestId) part.requestId = inv.requestId;
    const more = await handleSqsRedrive({ Records: others }, { ...inv, trace: part.trace });
    Object.assign(part, more.outcome);
    writeRecordLine(inv.rt.logger, part, {});
    batchItemFailures.push(...more.response.batchItemFailures);
  }
  return { response: { batchItemFailures }, outcome };
}
