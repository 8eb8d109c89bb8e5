/**
 * EventBridge "Send Email" events and direct invokes, end to end against smtp-server. Both apply the asynchronous
 * failure policy: a failure where nothing was sent is THROWN (Lambda retries an asynchronous invocation, then
 * dead-letters it); delivery unknown and a partly delivered batch are returned.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { InvocationProblem } from '../../functions/handlers/async-policy.ts';
import { DirectInvokeError } from '../../functions/handlers/direct.ts';
import { EventDeliveryError } from '../../functions/handlers/eventbridge.ts';
import { eventBridgeEvent } from './events.ts';
import { type Harness, startBlackholeHarness, startHarness } from './harness.ts';

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
});

/** The error the invocation threw (fails the test when it did not throw). */
const thrown = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error('expected the invocation to throw');
    },
    (e: unknown) => e as EventDeliveryError,
  );

const detail = { to: 'ops@example.com', subject: 'Order 42 shipped', text: 'Shipped.' };

describe('EventBridge "Send Email"', () => {
  it('delivers the detail and returns the result', async () => {
    const out = (await h.invoke(eventBridgeEvent(detail))) as Record<string, unknown>;
    expect(out).toMatchObject({ ok: true, accepted: ['ops@example.com'], rejected: [] });
    expect((await h.parsed()).subject).toBe('Order 42 shipped');
    const summary = h.logs.filter((l) => l.entryPoint === 'eventbridge').at(-1)!;
    expect(summary).toMatchObject({ outcome: 'sent', recipientDomains: ['example.com'] });
  });

  it('a permanent failure (validation) is THROWN as a typed error so it reaches the DLQ; nothing sent', async () => {
    const err = await thrown(h.invoke(eventBridgeEvent({ ...detail, subject: 'a\r\nBcc: x@example.com' })));
    expect(err).toBeInstanceOf(EventDeliveryError);
    expect(err.name).toBe('EventDeliveryError');
    expect(err.code).toBe('validation_failed');
    expect(err.transient).toBe(false);
    expect(err.message).toMatch(/^\[validation_failed\] subject/);
    expect(h.srv.mailFrom).toHaveLength(0);
  });

  it('recipient not allowed → thrown (permanent)', async () => {
    const err = await thrown(h.invoke(eventBridgeEvent({ ...detail, to: 'x@elsewhere.net' })));
    expect(err.code).toBe('recipient_not_allowed');
    expect(h.srv.mailFrom).toHaveLength(0);
  });

  it('a transient SMTP failure is thrown (transient: true) so Lambda retries it', async () => {
    const err = await thrown(h.invoke(eventBridgeEvent({ ...detail, to: 'defer@example.com' })));
    expect(err).toBeInstanceOf(EventDeliveryError);
    expect(err.code).toBe('smtp_unavailable');
    expect(err.transient).toBe(true);
  });

  it('an unknown detail-type is thrown (unsupported_event)', async () => {
    const err = await thrown(h.invoke(eventBridgeEvent(detail, 'Order Shipped')));
    expect(err.code).toBe('unsupported_event');
  });

  it('delivery unknown is NOT thrown (a retry could duplicate): logged at ERROR with its stable code', async () => {
    const out = (await h.invoke(eventBridgeEvent({ ...detail, to: 'blackhole@example.com' }), 4000)) as {
      ok: boolean;
      error: { code: string; detail: string };
    };
    expect(out.ok).toBe(false);
    expect(out.error.code).toBe('delivery_unknown');
    expect(out.error.detail).toMatch(/do not retry blindly/i);
    const summary = h.logs.filter((l) => l.entryPoint === 'eventbridge').at(-1)!;
    expect(summary).toMatchObject({
      level: 'ERROR',
      code: 'delivery_unknown',
      outcome: 'unknown',
      attempts: 1,
    });
  });

  it('a batch detail: partly failed is returned (not thrown) and each failure logged', async () => {
    const out = (await h.invoke(
      eventBridgeEvent({
        messages: [detail, { ...detail, to: 'reject-1@example.com' }],
      }),
    )) as { ok: boolean; results: Array<{ status: string }> };
    expect(out.results.map((r) => r.status)).toEqual(['accepted', 'rejected']);
    expect(h.logs.some((l) => l.code === 'batch_partial_failure' && l.index === 1)).toBe(true);
    const all = await thrown(
      h.invoke(eventBridgeEvent({ messages: [{ ...detail, to: 'reject-2@example.com' }] })),
    );
    expect(all.code).toBe('batch_failed');
  });
});

/** A direct invoke's thrown error, its problem (the JSON `errorMessage`) and its stack lines (Lambda's `trace`). */
async function invokeFailure(p: Promise<unknown>) {
  const e = (await thrown(p)) as unknown as DirectInvokeError;
  expect(e).toBeInstanceOf(DirectInvokeError);
  const problem = JSON.parse(e.message) as InvocationProblem;
  return { e, problem, trace: String(e.stack).split('\n') };
}

describe('direct invoke', () => {
  it('the /send shape returns { ok: true, messageId, accepted, rejected }', async () => {
    const out = (await h.invoke(detail)) as Record<string, unknown>;
    expect(out).toMatchObject({ ok: true, accepted: ['ops@example.com'], rejected: [] });
    expect(out.messageId).toMatch(/^<.+>$/);
    expect(h.logs.filter((l) => l.entryPoint === 'direct_invoke').at(-1)).toMatchObject({ outcome: 'sent' });
  });

  it('a batch returns per-message results', async () => {
    const out = (await h.invoke({ messages: [detail, { ...detail, to: 'second@example.com' }] })) as {
      ok: boolean;
      results: Array<{ status: string; index: number }>;
    };
    expect(out.ok).toBe(true);
    expect(out.results.map((r) => [r.index, r.status])).toEqual([
      [0, 'accepted'],
      [1, 'accepted'],
    ]);
    expect(h.srv.messages).toHaveLength(2);
  });

  it('a bad payload is THROWN: name = the stable code, message = the problem as JSON, a one-line stack', async () => {
    const { e, problem, trace } = await invokeFailure(h.invoke({ to: 'ops@example.com', subject: 42 }));
    expect(e.name).toBe('validation_failed');
    expect(e.code).toBe('validation_failed');
    expect(e.transient).toBe(false);
    expect(problem).toMatchObject({
      code: 'validation_failed',
      status: 400,
      title: 'The request is not valid',
      transient: false,
    });
    expect(problem.detail).toContain('subject');
    expect(problem.errors).toEqual(
      expect.arrayContaining([expect.objectContaining({ field: 'subject', code: expect.any(String) })]),
    );
    expect(problem.retryAfter).toBeUndefined();
    // Lambda's Node runtime answers `trace: stack.split('\n')`: no code paths in the invoke response.
    expect(trace).toEqual([`validation_failed: ${e.message}`]);
    expect(e.stack).not.toMatch(/\bat\b.*\.ts|functions\/|node_modules/);
    expect(h.srv.mailFrom).toHaveLength(0);
    const summary = h.logs.filter((l) => l.entryPoint === 'direct_invoke').at(-1)!;
    expect(summary).toMatchObject({
      outcome: 'rejected',
      code: 'validation_failed',
      thrown: 'validation_failed',
      fieldErrors: expect.arrayContaining([expect.stringMatching(/^subject:/)]),
    });
  });

  it('other refused requests are thrown with their field errors; nothing sent', async () => {
    const notObject = await invokeFailure(h.invoke('just a string'));
    expect(notObject.problem).toMatchObject({
      code: 'validation_failed',
      errors: [{ field: 'payload', code: 'invalid_type' }],
    });
    const tooMany = await invokeFailure(h.invoke({ messages: Array.from({ length: 6 }, () => detail) }));
    expect(tooMany.problem).toMatchObject({
      code: 'validation_failed',
      errors: [{ field: 'messages', code: 'too_many_messages' }],
    });
    const many = await invokeFailure(
      h.invoke({ ...detail, to: Array.from({ length: 1000 }, (_, i) => `u${i}@example.com`) }),
    );
    expect(many.problem.errors![0]!.code).toBe('too_many_recipients');
    const elsewhere = await invokeFailure(h.invoke({ ...detail, to: 'x@elsewhere.net' }));
    expect(elsewhere.e.name).toBe('recipient_not_allowed');
    expect(elsewhere.problem).toMatchObject({ code: 'recipient_not_allowed', status: 403, transient: false });
    expect(h.srv.mailFrom).toHaveLength(0);
  });

  it('CR/LF in header-bound fields and invalid base64 are thrown as field errors', async () => {
    for (const patch of [
      { to: 'ops@example.com\nBcc: x@example.com' },
      { subject: 'x\ry' },
      { headers: { 'X-A': 'b\nc' } },
      { attachments: [{ filename: 'a', contentType: 'text/plain', content: '@@@' }] },
    ]) {
      const { e, problem } = await invokeFailure(h.invoke({ ...detail, ...patch }));
      expect(e.name).toBe('validation_failed');
      expect(problem.errors?.length).toBeGreaterThan(0);
    }
    expect(h.srv.mailFrom).toHaveLength(0);
  });

  it('a transient SMTP failure (451) is thrown as smtp_unavailable, transient, with the SMTP detail', async () => {
    const { e, problem, trace } = await invokeFailure(h.invoke({ ...detail, to: 'defer@example.com' }));
    expect(e.name).toBe('smtp_unavailable');
    expect(e.transient).toBe(true);
    expect(problem).toMatchObject({
      code: 'smtp_unavailable',
      status: 503,
      transient: true,
      smtp: { code: 451 },
    });
    expect(problem.retryAfter).toBeGreaterThan(0);
    expect(trace).toHaveLength(1);
    expect(h.srv.messages).toHaveLength(0);
    expect(h.logs.filter((l) => l.entryPoint === 'direct_invoke').at(-1)).toMatchObject({
      level: 'ERROR',
      outcome: 'failed',
      code: 'smtp_unavailable',
      thrown: 'smtp_unavailable',
    });
  });

  it('delivery unknown is RETURNED, not thrown (a retry could duplicate); logged at ERROR', async () => {
    const out = (await h.invoke({ ...detail, to: 'blackhole@example.com' }, 4000)) as {
      ok: boolean;
      error: { code: string; detail: string };
    };
    expect(out.ok).toBe(false);
    expect(out.error.code).toBe('delivery_unknown');
    expect(out.error.detail).toMatch(/do not retry blindly/i);
    const summary = h.logs.filter((l) => l.entryPoint === 'direct_invoke').at(-1)!;
    expect(summary).toMatchObject({ level: 'ERROR', code: 'delivery_unknown', outcome: 'unknown' });
    expect(summary.thrown).toBeUndefined();
  });

  it('a batch partly delivered is RETURNED, each failure logged; a batch where nothing was sent is thrown', async () => {
    const out = (await h.invoke({
      messages: [detail, { ...detail, to: 'reject-1@example.com' }],
    })) as { ok: boolean; results: Array<{ status: string }> };
    expect(out.ok).toBe(true);
    expect(out.results.map((r) => r.status)).toEqual(['accepted', 'rejected']);
    expect(h.srv.messages).toHaveLength(1);
    expect(
      h.logs.some(
        (l) =>
          l.code === 'batch_partial_failure' &&
          l.entryPoint === 'direct_invoke' &&
          l.index === 1 &&
          l.level === 'ERROR',
      ),
    ).toBe(true);

    const refused = await invokeFailure(
      h.invoke({
        messages: [
          { ...detail, to: 'reject-2@example.com' },
          { ...detail, subject: 'a\nb' },
        ],
      }),
    );
    expect(refused.e.name).toBe('batch_failed');
    expect(refused.problem).toMatchObject({
      code: 'batch_failed',
      status: 502,
      transient: false,
      results: [
        { index: 0, status: 'rejected', error: { code: 'smtp_rejected', smtp: { code: 550 } } },
        { index: 1, status: 'rejected', error: { code: 'validation_failed' } },
      ],
    });
    expect(refused.problem.retryAfter).toBeUndefined();

    const deferred = await invokeFailure(
      h.invoke({
        messages: [
          { ...detail, to: 'defer-1@example.com' },
          { ...detail, to: 'reject-3@example.com' },
        ],
      }),
    );
    expect(deferred.problem).toMatchObject({ code: 'batch_failed', status: 503, transient: true });
    expect(deferred.problem.retryAfter).toBeGreaterThan(0);
    expect(h.srv.messages).toHaveLength(1);
  });
});

describe('bad input through EventBridge and direct invoke → typed failure, nothing sent', () => {
  const bad: Array<[string, unknown, string]> = [
    ['wrong type', { ...detail, to: 42 }, 'validation_failed'],
    ['missing subject', { to: detail.to, text: 'x' }, 'validation_failed'],
    ['missing body', { to: detail.to, subject: 's' }, 'validation_failed'],
    ['CR/LF in subject', { ...detail, subject: 'a\r\nb' }, 'validation_failed'],
    ['CR/LF in to', { ...detail, to: 'ops@example.com\r\nBcc: x@example.com' }, 'validation_failed'],
    ['CR/LF in cc', { ...detail, cc: ['c@example.com\n'] }, 'validation_failed'],
    ['CR/LF in bcc', { ...detail, bcc: 'c@example.com\r' }, 'validation_failed'],
    ['CR/LF in replyTo', { ...detail, replyTo: 'r@example.com\nX: y' }, 'validation_failed'],
    ['CR/LF in from', { ...detail, from: 'noreply@example.com\nX: y' }, 'validation_failed'],
    ['CR/LF in a header', { ...detail, headers: { 'X-A': 'b\r\nc' } }, 'validation_failed'],
    [
      'CR/LF in a filename',
      { ...detail, attachments: [{ filename: 'a\n', contentType: 'text/plain', content: 'YQ==' }] },
      'validation_failed',
    ],
    [
      'invalid base64',
      { ...detail, attachments: [{ filename: 'a', contentType: 'text/plain', content: 'YQ' }] },
      'validation_failed',
    ],
    ['lone surrogate (not valid Unicode)', { ...detail, subject: 'bad \ud800 text' }, 'validation_failed'],
    ['text over maxBodyBytes', { ...detail, text: 'x'.repeat(1024 * 1024 + 1) }, 'payload_too_large'],
    [
      '1,000 recipients',
      { ...detail, to: Array.from({ length: 1000 }, (_, i) => `u${i}@example.com`) },
      'validation_failed',
    ],
  ];

  it.each(bad)('%s', async (_name, payload, code) => {
    const direct = await invokeFailure(h.invoke(payload));
    expect(direct.e.name).toBe(code);
    expect(direct.problem).toMatchObject({ code, transient: false });
    const err = await thrown(h.invoke(eventBridgeEvent(payload)));
    expect(err).toBeInstanceOf(EventDeliveryError);
    expect(err.code).toBe(code);
    expect(err.transient).toBe(false);
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

  it('a direct invoke throws smtp_unavailable (transient), so an asynchronous invoke is retried, then dead-lettered', async () => {
    const { e, problem, trace } = await invokeFailure(down.invoke(detail, 15_000));
    expect(e.name).toBe('smtp_unavailable');
    expect(problem).toMatchObject({ code: 'smtp_unavailable', status: 503, transient: true });
    expect(problem.retryAfter).toBeGreaterThan(0);
    expect(trace).toHaveLength(1);
    expect(JSON.stringify(problem)).not.toMatch(/password|AKID/i);
  });
});
