/**
 * functions/handlers/logger.ts writes the lines Powertools for AWS Lambda's Logger writes — the same keys in the same
 * order, on the same streams, under the same variables — checked against the real Powertools Logger (a dev
 * dependency here) as the oracle; and an Error is its name, location and message, never its stack.
 */
import { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import type { Context } from 'aws-lambda';
import { afterEach, describe, expect, it } from 'vitest';
import { Logger } from '../../functions/handlers/logger.ts';

const context = {
  awsRequestId: '6f1c2e5a-1d0b-4a43-9c1e-2f4bd5a1b0c7',
  functionName: 'smtp-send',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:smtp-send',
  memoryLimitInMB: '256',
  getRemainingTimeInMillis: () => 30_000,
} as unknown as Context;

type Line = { stream: 'stdout' | 'stderr'; line: Record<string, unknown> };
const restore: Array<() => void> = [];

/** Lines written to stdout/stderr while `fn` runs (JSON lines only). */
function capture(fn: () => void): Line[] {
  const out: Line[] = [];
  for (const name of ['stdout', 'stderr'] as const) {
    const stream = process[name];
    const write = stream.write;
    stream.write = ((chunk: string | Uint8Array) => {
      for (const l of String(chunk).split('\n'))
        if (l.startsWith('{')) out.push({ stream: name, line: JSON.parse(l) });
      return true;
    }) as typeof stream.write;
    restore.push(() => {
      stream.write = write;
    });
  }
  try {
    fn();
  } finally {
    for (const r of restore.splice(0)) r();
  }
  return out;
}

const ENV_KEYS = [
  'POWERTOOLS_LOG_LEVEL',
  'LOG_LEVEL',
  'AWS_LAMBDA_LOG_LEVEL',
  'POWERTOOLS_LOGGER_SAMPLE_RATE',
  '_X_AMZN_TRACE_ID',
  'AWS_LAMBDA_INITIALIZATION_TYPE',
];
const saved = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));
afterEach(() => {
  for (const k of ENV_KEYS) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
});

/** The same calls on both loggers (each made after the env is set, as at cold start). */
function both(calls: (l: Logger | PowertoolsLogger) => void): { ours: Line[]; theirs: Line[] } {
  const theirs = capture(() => calls(new PowertoolsLogger({ serviceName: 'smtp-send-endpoint' })));
  const ours = capture(() => calls(new Logger({ serviceName: 'smtp-send-endpoint' })));
  return { ours, theirs };
}

const withoutTime = (l: Line) => ({ ...l, line: { ...l.line, timestamp: typeof l.line.timestamp } });

describe('the logger writes what Powertools Logger writes', () => {
  it('the same keys in the same order, values and streams, with the Lambda context and an X-Ray trace', () => {
    process.env._X_AMZN_TRACE_ID =
      'Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1';
    process.env.AWS_LAMBDA_INITIALIZATION_TYPE = 'on-demand';
    const { ours, theirs } = both((l) => {
      l.resetKeys();
      l.addContext(context);
      l.info('form_post sent', {
        entryPoint: 'form_post',
        outcome: 'sent',
        roundTrips: 8,
        nested: { a: [1] },
      });
      l.warn('form_post rejected', { code: 'validation_error' });
      l.error('form_post failed', { code: 'delivery_unknown', status: 502 });
    });
    expect(ours.map(withoutTime)).toEqual(theirs.map(withoutTime));
    expect(ours.map((l) => Object.keys(l.line))).toEqual(theirs.map((l) => Object.keys(l.line)));
    expect(ours.map((l) => l.stream)).toEqual(['stdout', 'stderr', 'stderr']);
    expect(ours[0]!.line.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(ours[0]!.line.cold_start).toBe(true);
  });

  it('before any invocation (no context) the same lines too', () => {
    const { ours, theirs } = both((l) =>
      l.error('invalid endpoint configuration', { code: 'configuration_error' }),
    );
    expect(ours.map(withoutTime)).toEqual(theirs.map(withoutTime));
  });

  it('POWERTOOLS_LOG_LEVEL, else AWS_LAMBDA_LOG_LEVEL, decides which lines are written, as for Powertools', () => {
    const calls = (l: Logger | PowertoolsLogger) => {
      l.debug('d');
      l.info('i');
      l.warn('w');
      l.error('e');
    };
    const levels = (lines: Line[]) => lines.map((l) => l.line.level);
    for (const vars of [
      [['POWERTOOLS_LOG_LEVEL', 'ERROR']],
      [['POWERTOOLS_LOG_LEVEL', 'warn']],
      [['POWERTOOLS_LOG_LEVEL', 'DEBUG']],
      [['POWERTOOLS_LOG_LEVEL', 'SILENT']],
      [['LOG_LEVEL', 'WARN']],
      [['AWS_LAMBDA_LOG_LEVEL', 'WARN']],
      [['AWS_LAMBDA_LOG_LEVEL', 'FATAL']],
      [
        ['AWS_LAMBDA_LOG_LEVEL', 'ERROR'],
        ['POWERTOOLS_LOG_LEVEL', 'DEBUG'],
      ],
    ] as const) {
      for (const key of ENV_KEYS) delete process.env[key];
      for (const [k, v] of vars) process.env[k] = v;
      const { ours, theirs } = both(calls);
      expect(levels(ours), JSON.stringify(vars)).toEqual(levels(theirs));
    }
    delete process.env.POWERTOOLS_LOG_LEVEL;
    delete process.env.AWS_LAMBDA_LOG_LEVEL;
    expect(levels(capture(() => calls(new Logger())))).toEqual(['INFO', 'WARN', 'ERROR']);
  });

  it('cold_start is true for the first invocation only (of an on-demand environment, as Powertools says)', () => {
    process.env.AWS_LAMBDA_INITIALIZATION_TYPE = 'on-demand';
    const l = new Logger();
    const lines = capture(() => {
      for (let i = 0; i < 3; i++) {
        l.resetKeys();
        l.addContext(context);
        l.info('x');
      }
    });
    expect(lines.map((x) => x.line.cold_start)).toEqual([true, false, false]);
  });

  it('POWERTOOLS_LOGGER_SAMPLE_RATE=1 logs DEBUG for the sampled invocation; 0 does not', () => {
    process.env.POWERTOOLS_LOGGER_SAMPLE_RATE = '1';
    const sampled = new Logger();
    const a = capture(() => {
      sampled.addContext(context);
      sampled.debug('d');
    });
    expect(a.map((x) => [x.line.level, x.line.sampling_rate])).toEqual([['DEBUG', 1]]);
    process.env.POWERTOOLS_LOGGER_SAMPLE_RATE = '0';
    const unsampled = new Logger();
    expect(
      capture(() => {
        unsampled.addContext(context);
        unsampled.debug('d');
      }),
    ).toEqual([]);
  });

  it('an Error is written as name, location and message (and its cause): never a stack trace', () => {
    const cause = new RangeError('inner');
    const err = new TypeError('boom', { cause });
    const [line] = capture(() => new Logger().error('send handler failed', { error: err }));
    const value = line!.line.error as Record<string, unknown>;
    expect(value).toMatchObject({
      name: 'TypeError',
      message: 'boom',
      cause: { name: 'RangeError', message: 'inner' },
    });
    expect(value.location).toMatch(/logger\.test\.ts:\d+:\d+$/);
    expect(JSON.stringify(line!.line)).not.toMatch(/\n\s+at |\\n\s+at /);
  });
});
