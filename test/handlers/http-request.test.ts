/** The HTTP request decoded once from the HTTP API 2.0 event (handlers/http.ts `httpRequest`). */
import { describe, expect, it } from 'vitest';
import { httpRequest } from '../../functions/handlers/http.ts';
import { SendError } from '../../functions/send/errors.ts';
import { httpEvent } from './events.ts';

describe('httpRequest', () => {
  it('takes method, path without the stage, lower-cased headers, origin, accept, media type, source IP', () => {
    const event = httpEvent({
      method: 'post',
      path: '/forms/contact/',
      stage: 'prod',
      headers: {
        Origin: 'https://site.example',
        Accept: 'Text/HTML',
        'Content-Type': 'Multipart/Form-Data; boundary=xY',
      },
      sourceIp: '203.0.113.9',
      iam: true,
    });
    event.headers['X-Stray-Case'] = 'kept';
    event.requestContext.timeEpoch = 1_700_000_000_000;
    const r = httpRequest(event);
    expect(r).toMatchObject({
      method: 'POST',
      path: '/forms/contact',
      origin: 'https://site.example',
      accept: 'text/html',
      mediaType: 'multipart/form-data',
      contentType: 'Multipart/Form-Data; boundary=xY',
      sourceIp: '203.0.113.9',
      timeEpoch: 1_700_000_000_000,
      iamCaller: true,
    });
    expect(r.headers['x-stray-case']).toBe('kept');
    // Lookups of names no request sent find nothing, whatever Object.prototype has.
    expect(r.headers.constructor).toBeUndefined();
  });

  it('reads the body within the bound the route gives, base64 or text', () => {
    const text = httpRequest(httpEvent({ path: '/send', body: 'héllo' }));
    expect(text.body.text(100)).toBe('héllo');
    expect(() => text.body.text(3)).toThrowError(SendError);
    const binary = httpRequest(httpEvent({ path: '/send', body: Buffer.from([0xff, 0x00]) }));
    expect([...binary.body.bytes(2)]).toEqual([0xff, 0x00]);
    expect(() => binary.body.text(2)).toThrowError(/not valid UTF-8/u);
    expect(() => binary.body.bytes(1)).toThrowError(/at most 1/u);
  });
});
