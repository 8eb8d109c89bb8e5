/**
 * How the local server invokes a function, as API Gateway and Lambda do: the 30 s budget in `context`, a
 * function that outlives the integration timeout (503), one that throws (500), Lambda's error shape for
 * EventBridge/direct invokes, and a refused invalid configuration.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { createLambdaContext } from '../../local/lambda-context.ts';
import { invokeDirect, invokeForHttpApi, localizeConfig, startLocal } from '../../local/server.ts';

describe('Lambda context', () => {
  it('counts the remaining time down from the budget', async () => {
    const c = createLambdaContext(30_000);
    const first = c.getRemainingTimeInMillis();
    expect(first).toBeLessThanOrEqual(30_000);
    expect(first).toBeGreaterThan(25_000);
    await new Promise((r) => setTimeout(r, 50));
    expect(c.getRemainingTimeInMillis()).toBeLessThan(first);
    expect(c.awsRequestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(c.functionName).toBeTruthy();
    expect(createLambdaContext(0).getRemainingTimeInMillis()).toBe(0);
  });
});

describe('gateway behaviour around the function', () => {
  it('a function that outlives the budget is a 503 Service Unavailable; one that throws is a 500', async () => {
    let seen: Context | undefined;
    const slow = (_e: unknown, c: Context) => {
      seen = c;
      return new Promise<unknown>(() => {});
    };
    const timedOut = await invokeForHttpApi(slow, {}, 150);
    expect(timedOut.statusCode).toBe(503);
    expect(JSON.parse(timedOut.body.toString())).toEqual({ message: 'Service Unavailable' });
    expect(seen!.getRemainingTimeInMillis()).toBe(0);

    const failing = async () => {
      throw new Error('boom');
    };
    const lines: string[] = [];
    const crashed = await invokeForHttpApi(failing, {}, 1000, (l) => lines.push(l));
    expect(crashed.statusCode).toBe(500);
    expect(JSON.parse(crashed.body.toString())).toEqual({ message: 'Internal Server Error' });
    expect(lines.join('\n')).toContain('boom');

    const failed = await invokeDirect(failing, {}, 1000);
    expect(failed.error).toMatchObject({ errorType: 'Error', errorMessage: 'boom' });
    // Lambda's Node runtime: `trace` is the stack, line by line.
    expect(failed.error!.trace![0]).toBe('Error: boom');
    expect(failed.error!.trace!.length).toBeGreaterThan(1);
    const notAnError = async () => {
      throw 'just a string';
    };
    expect(await invokeDirect(notAnError, {}, 1000)).toEqual({
      error: { errorType: 'string', errorMessage: 'just a string', trace: [] },
    });
    expect(await invokeDirect(slow, {}, 100)).toEqual({
      error: { errorType: 'Sandbox.Timedout', errorMessage: 'Task timed out after 0.1 seconds' },
    });
  });
});

describe('configuration', () => {
  it('adds the local origins, follows the port, and drops CAPTCHA only', () => {
    const input = {
      send: { allowedSenders: ['noreply@example.com'] },
      forms: {
        a: {
          to: 'x@example.com',
          subject: 's',
          allowedOrigins: ['https://www.example.com', 'http://localhost:3000'],
          redirect: 'http://127.0.0.1:3000/thanks?x=1',
          redirectAllowlist: ['http://127.0.0.1:3000/', 'https://www.example.com/'],
          captcha: { provider: 'turnstile', secretId: 'c' },
        },
        b: { to: 'x@example.com', subject: 's', redirect: 'https://www.example.com/ok' },
      },
    };
    const { config, notes } = localizeConfig(input, 'http://127.0.0.1:4321');
    expect(config.forms).toEqual({
      a: {
        to: 'x@example.com',
        subject: 's',
        allowedOrigins: ['https://www.example.com', 'http://localhost:4321', 'http://127.0.0.1:4321'],
        redirect: 'http://127.0.0.1:4321/thanks?x=1',
        redirectAllowlist: ['http://127.0.0.1:4321/', 'https://www.example.com/'],
      },
      b: { to: 'x@example.com', subject: 's', redirect: 'https://www.example.com/ok' },
    });
    expect(notes).toEqual(['form "a": CAPTCHA verification is off locally']);
    expect(input.forms.a.captcha).toBeDefined();
  });

  it('an invalid configuration file is refused with the path of the problem, before anything else starts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'local-config-'));
    try {
      const file = join(dir, 'endpoint.json');
      writeFileSync(file, JSON.stringify({ forms: { contact: { to: 'not an address', subject: 'x' } } }));
      await expect(startLocal({ port: 0, smtpPort: 0, configFile: file })).rejects.toThrow(
        /forms\.contact\.to/,
      );
      writeFileSync(file, '{ nope');
      await expect(startLocal({ port: 0, smtpPort: 0, configFile: file })).rejects.toThrow(
        /cannot read the endpoint configuration/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
