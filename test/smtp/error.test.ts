import { describe, expect, it } from 'vitest';
import { replyError, SmtpError } from '../../functions/smtp/error.ts';
import { makeReply, parseQueueId } from '../../functions/smtp/reply.ts';

describe('SmtpError', () => {
  it('derives transient from 4xx codes and defaults delivery to not-sent', () => {
    expect(new SmtpError('x', { phase: 'rcpt', kind: 'reply', code: 451 })).toMatchObject({
      transient: true,
      delivery: 'not-sent',
    });
    expect(new SmtpError('x', { phase: 'rcpt', kind: 'reply', code: 550 }).transient).toBe(false);
  });

  it('toJSON is safe to log: no cause, no stack, redacted command', () => {
    const secret = Buffer.from('\0user\0hunter2').toString('base64');
    const e = replyError(
      'authentication failed',
      'auth',
      makeReply(535, ['5.7.8 bad credentials']),
      'AUTH PLAIN ***',
    );
    const withCause = new SmtpError('boom', { phase: 'auth', kind: 'network', cause: new Error(secret) });
    for (const err of [e, withCause]) {
      const json = JSON.stringify(err);
      expect(json).not.toContain(secret);
      expect(json).not.toContain('hunter2');
    }
    expect(JSON.parse(JSON.stringify(e))).toEqual({
      name: 'SmtpError',
      message: 'authentication failed: 535 5.7.8 bad credentials',
      phase: 'auth',
      kind: 'reply',
      command: 'AUTH PLAIN ***',
      code: 535,
      enhancedCode: '5.7.8',
      serverText: 'bad credentials',
      transient: false,
      delivery: 'not-sent',
    });
  });

  it('withDelivery keeps everything else', () => {
    const cause = new Error('reset');
    const transcript = [{ t: 0, dir: 'C' as const, line: 'MAIL FROM:<a@example.com>' }];
    const e = new SmtpError('gone', {
      phase: 'mail',
      kind: 'network',
      transient: true,
      command: 'MAIL FROM:<a@example.com>',
      code: 421,
      enhancedCode: '4.4.2',
      serverText: 'closing',
      roundTrips: 5,
      transcript,
      cause,
    });
    const copy = e.withDelivery('unknown', 'data');
    expect(copy).toMatchObject({
      message: 'gone',
      phase: 'data',
      kind: 'network',
      transient: true,
      delivery: 'unknown',
      command: 'MAIL FROM:<a@example.com>',
      code: 421,
      enhancedCode: '4.4.2',
      serverText: 'closing',
      roundTrips: 5,
      transcript,
      cause,
      stack: e.stack,
    });
    expect(e.withDelivery('unknown')).toBeInstanceOf(SmtpError);
    expect(e.withDelivery('unknown').phase).toBe('mail');
    // Fields the original never had stay unset.
    expect(
      Object.entries(new SmtpError('x', { phase: 'data', kind: 'timeout' }).withDelivery('unknown')),
    ).toEqual(Object.entries(new SmtpError('x', { phase: 'data', kind: 'timeout', delivery: 'unknown' })));
  });
});

describe('queue id (best effort)', () => {
  it.each([
    ['2.0.0 Ok: queued as 4XyZ1n2ABC', '4XyZ1n2ABC'],
    ['OK id=1rAbCd-000123-4x', '1rAbCd-000123-4x'],
    [
      '2.0.0 OK  1700000000 d75a77b69052e-4a0dcd4e1f1si123456qtb.2 - gsmtp',
      'd75a77b69052e-4a0dcd4e1f1si123456qtb.2',
    ],
    ['Ok', undefined],
  ])('%s → %s', (text, id) => {
    expect(parseQueueId(makeReply(250, [text]))).toBe(id);
  });
});
