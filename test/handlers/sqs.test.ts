/**
 * Redriving the dead-letter queue: SQS events in the exact shape Lambda's event source mapping delivers, wrapping
 * Lambda destination records of failed asynchronous invocations, end to end against smtp-server and the local
 * Secrets Manager endpoint.
 */
import { randomUUID } from 'node:crypto';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DirectInvokeError } from '../../functions/handlers/direct.ts';
import { MIN_RECORD_BUDGET_MS } from '../../functions/handlers/sqs.ts';
import { isSqsEvent } from '../../functions/handlers/sqs-event.ts';
import { destinationRecord, eventBridgeEvent, httpEvent, sqsEvent, sqsRecord } from './events.ts';
import { type Harness, startBlackholeHarness, startHarness } from './harness.ts';

const record = (payload: unknown, opts?: Parameters<typeof destinationRecord>[1]) =>
  sqsRecord(JSON.stringify(destinationRecord(payload, opts)));

interface BatchResponse {
  batchItemFailures: Array<{ itemIdentifier: string }>;
}

let h: Harness;
beforeAll(async () => {
  h = await startBlackholeHarness();
});
afterAll(async () => {
  await h?.close();
});
beforeEach(() => {
  h.srv.messages.length = 0;
  h.srv.mailFrom.length = 0;
  h.logs.length = 0;
  h.rawLog.length = 0;
});

const redrive = async (event: SQSEvent, timeoutMs?: number) =>
  (await h.invoke(event, timeoutMs)) as BatchResponse;
const failures = (out: BatchResponse) => out.batchItemFailures.map((f) => f.itemIdentifier);
/** The per-record log line of one SQS message. */
const recordLog = (r: SQSRecord) =>
  h.logs.find((l) => l.entryPoint === 'sqs_redrive' && l.sqsMessageId === r.messageId);
const summaryLog = () => h.logs.filter((l) => l.entryPoint === 'sqs_redrive' && 'records' in l).at(-1);
const subjects = async () =>
  Promise.all(h.srv.messages.map(async (m) => (await simpleParser(m.raw)).subject)).then((s) => s.sort());

const detail = { to: 'ops@example.com', subject: 'Order 42 shipped', text: 'Shipped.' };

describe('recognising the SQS event', () => {
  it('an SQS event is routed to the redrive, not to direct invoke', () => {
    expect(isSqsEvent(sqsEvent(record(detail)))).toBe(true);
    expect(isSqsEvent({ Records: [] })).toBe(false);
    expect(isSqsEvent({ Records: [{ eventSource: 'aws:sns' }] })).toBe(false);
    expect(isSqsEvent(detail)).toBe(false);
    expect(isSqsEvent(eventBridgeEvent(detail))).toBe(false);
  });
});

describe('redriving destination records', () => {
  it('an EventBridge "Send Email" that failed is delivered exactly once; the batch has no failures', async () => {
    const r = record(eventBridgeEvent({ ...detail, subject: 'Redriven EventBridge' }));
    const out = await redrive(sqsEvent(r));
    expect(out).toEqual({ batchItemFailures: [] });
    expect(h.srv.messages).toHaveLength(1);
    const mail = await h.parsed(0);
    expect(mail.subject).toBe('Redriven EventBridge');
    expect(mail.text?.trim()).toBe('Shipped.');
    expect(mail.to && !Array.isArray(mail.to) ? mail.to.value[0]?.address : undefined).toBe(
      'ops@example.com',
    );
    expect(recordLog(r)).toMatchObject({
      level: 'INFO',
      outcome: 'sent',
      disposition: 'sent',
      batchItemFailure: false,
      source: 'destination_record',
      via: 'eventbridge',
      condition: 'RetriesExhausted',
      originalErrorType: 'EventDeliveryError',
      originalCode: 'smtp_unavailable',
      recipientDomains: ['example.com'],
      receiveCount: 1,
    });
    expect(summaryLog()).toMatchObject({
      records: 1,
      messages: 1,
      sent: 1,
      retry: 0,
      park: 0,
      batchItemFailures: 0,
    });
    // Logs carry domains, never local parts, subjects or bodies.
    const lines = h.rawLog.join('\n');
    expect(lines).not.toContain('ops@');
    expect(lines).not.toContain('Redriven EventBridge');
    expect(lines).not.toContain('Shipped.');
  });

  it('a direct invoke that failed (timed out) is delivered through the direct path', async () => {
    const r = record(
      { ...detail, subject: 'Redriven direct' },
      {
        errorType: 'Sandbox.Timedout',
        errorMessage: 'RequestId: 1c2d Error: Task timed out after 30.03 seconds',
      },
    );
    const out = await redrive(sqsEvent(r));
    expect(failures(out)).toEqual([]);
    expect(await subjects()).toEqual(['Redriven direct']);
    expect(recordLog(r)).toMatchObject({
      via: 'direct_invoke',
      source: 'destination_record',
      originalErrorType: 'Sandbox.Timedout',
      disposition: 'sent',
    });
    expect(recordLog(r)?.originalCode).toBeUndefined();
  });

  it('an asynchronous direct invoke that threw: its destination record is read (code from errorType) and redriven', async () => {
    // The real error a direct invoke throws for a transient failure (451), as Lambda's Node runtime reports it.
    const err = (await h.invoke({ ...detail, to: 'defer@example.com' }).then(
      () => {
        throw new Error('expected the direct invoke to throw');
      },
      (e: unknown) => e,
    )) as DirectInvokeError;
    expect(err).toBeInstanceOf(DirectInvokeError);
    expect(err.name).toBe('smtp_unavailable');
    // The server has recovered by the time the DLQ is redriven (here: a recipient it accepts).
    const payload = { ...detail, subject: 'after the outage' };
    const fromDestination = record(payload, { errorType: err.name, errorMessage: err.message });
    // A classic DeadLetterConfig queue: only the errorMessage (the problem as JSON) as an attribute.
    const fromClassic = sqsRecord(JSON.stringify({ ...payload, subject: 'after the outage (classic)' }), {
      messageAttributes: { ErrorMessage: { stringValue: err.message, dataType: 'String' } },
    });
    const out = await redrive(sqsEvent(fromDestination, fromClassic));
    expect(failures(out)).toEqual([]);
    expect(await subjects()).toEqual(['after the outage', 'after the outage (classic)']);
    expect(recordLog(fromDestination)).toMatchObject({
      via: 'direct_invoke',
      originalErrorType: 'smtp_unavailable',
      originalCode: 'smtp_unavailable',
      disposition: 'sent',
    });
    expect(recordLog(fromClassic)).toMatchObject({ originalCode: 'smtp_unavailable', disposition: 'sent' });
  });

  it('EventAgeExceeded records are redriven too', async () => {
    const r = record(eventBridgeEvent({ ...detail, subject: 'Aged' }), { condition: 'EventAgeExceeded' });
    expect(failures(await redrive(sqsEvent(r)))).toEqual([]);
    expect(await subjects()).toEqual(['Aged']);
  });

  it('a transient SMTP failure lists only that record; the others are delivered', async () => {
    const ok1 = record(eventBridgeEvent({ ...detail, subject: 'one' }));
    const deferred = record(eventBridgeEvent({ ...detail, to: 'defer@example.com', subject: 'deferred' }));
    const ok2 = record({ ...detail, subject: 'two' });
    const deferredDirect = record({ ...detail, to: 'defer-2@example.com', subject: 'deferred direct' });
    const out = await redrive(sqsEvent(ok1, deferred, ok2, deferredDirect), 60_000);
    expect(failures(out)).toEqual([deferred.messageId, deferredDirect.messageId]);
    expect(await subjects()).toEqual(['one', 'two']);
    for (const r of [deferred, deferredDirect]) {
      expect(recordLog(r)).toMatchObject({
        code: 'smtp_unavailable',
        disposition: 'retry',
        batchItemFailure: true,
        smtpCode: 451,
      });
    }
    expect(summaryLog()).toMatchObject({
      records: 4,
      messages: 2,
      sent: 2,
      retry: 2,
      outcome: 'partial',
      recipientDomains: ['example.com'],
    });
  });

  it('an invalid request is listed (parked by the receive count) and nothing is sent', async () => {
    const viaEvent = record(eventBridgeEvent({ ...detail, subject: 'a\r\nBcc: x@example.com' }));
    const viaDirect = record({ ...detail, to: 'x@elsewhere.net' });
    const wrongType = record(eventBridgeEvent(detail, 'Order Shipped'));
    const out = await redrive(sqsEvent(viaEvent, viaDirect, wrongType));
    expect(failures(out)).toEqual([viaEvent.messageId, viaDirect.messageId, wrongType.messageId]);
    expect(h.srv.mailFrom).toHaveLength(0);
    expect(recordLog(viaEvent)).toMatchObject({
      level: 'WARN',
      code: 'validation_failed',
      fieldErrors: ['subject:header_injection'],
      disposition: 'park',
    });
    expect(recordLog(viaDirect)).toMatchObject({
      code: 'recipient_not_allowed',
      disposition: 'park',
      via: 'direct_invoke',
      batchItemFailure: true,
    });
    expect(recordLog(wrongType)).toMatchObject({ code: 'unsupported_event', disposition: 'park' });
    expect(summaryLog()).toMatchObject({ records: 3, park: 3, outcome: 'rejected' });
  });

  it('a malformed body is listed with a stable code; the rest of the batch is delivered', async () => {
    const notJson = sqsRecord('{"version":"1.0","requestContext":');
    const notObject = sqsRecord('["to","ops@example.com"]');
    const noPayload = destinationRecord(detail);
    delete noPayload.requestPayload;
    const withoutPayload = sqsRecord(JSON.stringify(noPayload));
    const http = record(httpEvent({ path: '/send', body: JSON.stringify(detail) }));
    const good = record(eventBridgeEvent({ ...detail, subject: 'still sent' }));
    const out = await redrive(sqsEvent(notJson, notObject, withoutPayload, http, good));
    expect(failures(out)).toEqual([
      notJson.messageId,
      notObject.messageId,
      withoutPayload.messageId,
      http.messageId,
    ]);
    expect(await subjects()).toEqual(['still sent']);
    for (const r of [notJson, notObject, withoutPayload]) {
      expect(recordLog(r)).toMatchObject({
        level: 'WARN',
        code: 'redrive_malformed_body',
        disposition: 'park',
        batchItemFailure: true,
      });
    }
    expect(recordLog(http)).toMatchObject({ code: 'redrive_unsupported_payload', disposition: 'park' });
    expect(h.rawLog.join('\n')).not.toContain('ops@');
  });

  it('delivery unknown is NOT listed (a retry could duplicate): deleted, logged at ERROR', async () => {
    // The stuck record takes the invocation's time; the next one is not started and stays for the next receive.
    const stuck = record(eventBridgeEvent({ ...detail, to: 'blackhole@example.com' }));
    const next = record({ ...detail, subject: 'after the stuck one' });
    const out = await redrive(sqsEvent(stuck, next), MIN_RECORD_BUDGET_MS + 2000);
    expect(failures(out)).toEqual([next.messageId]);
    expect(recordLog(stuck)).toMatchObject({
      level: 'ERROR',
      code: 'delivery_unknown',
      outcome: 'unknown',
      disposition: 'unknown',
      batchItemFailure: false,
      via: 'eventbridge',
    });
    expect(recordLog(next)).toMatchObject({ code: 'redrive_deadline', disposition: 'retry' });
    expect(h.srv.messages).toHaveLength(0);
    expect(summaryLog()).toMatchObject({ level: 'ERROR', outcome: 'unknown', unknown: 1, retry: 1 });

    const direct = record({ ...detail, to: 'blackhole-2@example.com' });
    expect(await redrive(sqsEvent(direct), MIN_RECORD_BUDGET_MS + 2000)).toEqual({ batchItemFailures: [] });
    expect(recordLog(direct)).toMatchObject({
      level: 'ERROR',
      code: 'delivery_unknown',
      disposition: 'unknown',
      via: 'direct_invoke',
    });
  });

  it('a batch request: partly delivered is not listed (logged per message); nothing delivered is', async () => {
    const partial = record({
      messages: [
        { ...detail, subject: 'batch ok' },
        { ...detail, to: 'reject-1@example.com' },
      ],
    });
    const none = record(eventBridgeEvent({ messages: [{ ...detail, to: 'reject-2@example.com' }] }));
    const noneDirect = record({ messages: [{ ...detail, to: 'reject-3@example.com' }] });
    const out = await redrive(sqsEvent(partial, none, noneDirect));
    expect(failures(out)).toEqual([none.messageId, noneDirect.messageId]);
    expect(await subjects()).toEqual(['batch ok']);
    expect(recordLog(partial)).toMatchObject({ code: 'batch_partial_failure', disposition: 'partial' });
    expect(h.logs.some((l) => l.code === 'batch_partial_failure' && l.index === 1 && l.errorCode)).toBe(true);
    expect(recordLog(none)).toMatchObject({ code: 'batch_failed', disposition: 'park' });
    expect(recordLog(noneDirect)).toMatchObject({ code: 'batch_failed', disposition: 'park' });
  });

  it('the same original invocation twice in one batch is delivered once', async () => {
    const requestId = randomUUID();
    const a = record(eventBridgeEvent({ ...detail, subject: 'once' }), { requestId });
    const b = record(eventBridgeEvent({ ...detail, subject: 'once' }), { requestId });
    expect(failures(await redrive(sqsEvent(a, b)))).toEqual([]);
    expect(h.srv.messages).toHaveLength(1);
    expect(recordLog(b)).toMatchObject({ code: 'redrive_duplicate', disposition: 'sent' });
  });

  it('too little time left: records are listed without being started, nothing sent', async () => {
    const a = record(eventBridgeEvent(detail));
    const b = record(detail);
    const out = await redrive(sqsEvent(a, b), MIN_RECORD_BUDGET_MS - 500);
    expect(failures(out)).toEqual([a.messageId, b.messageId]);
    expect(h.srv.mailFrom).toHaveLength(0);
    expect(recordLog(a)).toMatchObject({ code: 'redrive_deadline', disposition: 'retry' });
  });
});

describe('bodies sent to the queue by hand', () => {
  it('a bare /send request and a bare EventBridge event are delivered', async () => {
    const send = sqsRecord(JSON.stringify({ ...detail, subject: 'by hand' }));
    const event = sqsRecord(JSON.stringify(eventBridgeEvent({ ...detail, subject: 'by hand event' })));
    // What a classic Lambda DeadLetterConfig queue holds: the bare event plus these attributes.
    const classic = sqsRecord(JSON.stringify({ ...detail, subject: 'classic dlq' }), {
      messageAttributes: {
        RequestID: { stringValue: 'f0e1d2c3-0000-4000-8000-000000000001', dataType: 'String' },
        ErrorCode: { stringValue: '200', dataType: 'Number' },
        ErrorMessage: { stringValue: '[smtp_unavailable] try later', dataType: 'String' },
      },
    });
    const out = await redrive(sqsEvent(send, event, classic));
    expect(failures(out)).toEqual([]);
    expect(await subjects()).toEqual(['by hand', 'by hand event', 'classic dlq']);
    expect(recordLog(send)).toMatchObject({ source: 'send_request', via: 'direct_invoke' });
    expect(recordLog(event)).toMatchObject({ source: 'eventbridge_event', via: 'eventbridge' });
    expect(recordLog(classic)).toMatchObject({
      originalRequestId: 'f0e1d2c3-0000-4000-8000-000000000001',
      originalCode: 'smtp_unavailable',
    });
  });

  it('a bare request that is not valid is listed, nothing sent', async () => {
    const r = sqsRecord(JSON.stringify({ hello: 'world' }));
    expect(failures(await redrive(sqsEvent(r)))).toEqual([r.messageId]);
    expect(recordLog(r)).toMatchObject({ code: 'validation_failed', disposition: 'park' });
    expect(h.srv.mailFrom).toHaveLength(0);
  });
});

describe('the mail server is down', () => {
  let down: Harness;
  beforeAll(async () => {
    down = await startHarness({ config: { send: { allowedRecipients: ['*@example.com'] } } });
    await down.srv.close();
  });
  afterAll(async () => {
    await down?.close().catch(() => {});
  });

  it('every record is listed as transient (smtp_unavailable) and the invocation does not throw', async () => {
    const a = record(eventBridgeEvent(detail));
    const b = record(detail);
    const out = (await down.invoke(sqsEvent(a, b), 60_000)) as BatchResponse;
    expect(failures(out)).toEqual([a.messageId, b.messageId]);
    const lines = down.logs.filter((l) => l.entryPoint === 'sqs_redrive' && l.sqsMessageId);
    expect(lines.map((l) => [l.code, l.disposition])).toEqual([
      ['smtp_unavailable', 'retry'],
      ['smtp_unavailable', 'retry'],
    ]);
    expect(down.logs.find((l) => l.entryPoint === 'sqs_redrive' && 'records' in l)).toMatchObject({
      outcome: 'failed',
      retry: 2,
    });
  });
});
