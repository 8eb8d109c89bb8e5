/**
 * The structured logger: one JSON object per line, with the keys Powertools for AWS Lambda's Logger writes (`level`,
 * `message`, `timestamp`, `service`, `cold_start`, `function_arn`, `function_memory_size`, `function_name`,
 * `function_request_id`, `sampling_rate`, `xray_trace_id`, then the line's own keys) to the same streams (DEBUG and
 * INFO to stdout, WARN and above to stderr), configured by the same variables: `POWERTOOLS_SERVICE_NAME`, Lambda's
 * `AWS_LAMBDA_LOG_LEVEL` (wins when set), else `POWERTOOLS_LOG_LEVEL` (or `LOG_LEVEL`), else INFO;
 * `POWERTOOLS_LOGGER_SAMPLE_RATE` (that share of invocations logs at DEBUG); `cold_start` as Powertools reports it. Ours rather than Powertools' for what it costs a cold start: its module graph
 * and its static import of `node:crypto`, ~3.4 ms of init CPU uncapped (docs/benchmarks.md). An `Error` value is
 * written as its name, location (first stack frame) and message — never its stack.
 */
import type { Context } from 'aws-lambda';

const LEVELS = { TRACE: 6, DEBUG: 8, INFO: 12, WARN: 16, ERROR: 20, CRITICAL: 24, SILENT: 28 } as const;
export type LogLevel = keyof typeof LEVELS;

export interface LoggerOptions {
  serviceName?: string;
  /** Default `process.env` (read once, here). */
  env?: NodeJS.ProcessEnv;
}

/** A level name exactly as Powertools takes it (upper case). */
function levelOf(name: string | undefined): LogLevel | undefined {
  return name !== undefined && name in LEVELS ? (name as LogLevel) : undefined;
}

/** Lambda's Advanced Logging Controls level wins; else POWERTOOLS_LOG_LEVEL (or LOG_LEVEL); else INFO. */
function configuredLevel(env: NodeJS.ProcessEnv): LogLevel {
  const alc = env.AWS_LAMBDA_LOG_LEVEL === 'FATAL' ? 'CRITICAL' : env.AWS_LAMBDA_LOG_LEVEL;
  return levelOf(alc) ?? levelOf(env.POWERTOOLS_LOG_LEVEL || env.LOG_LEVEL) ?? 'INFO';
}

/** An `Error` as a log value: name, where it was thrown, message (and the same for its cause, once). */
function errorValue(e: Error, depth = 0): Record<string, unknown> {
  const frame = /\n\s+at (?:.*\()?(.+?)\)?$/mu.exec(e.stack ?? '')?.[1] ?? '';
  const out: Record<string, unknown> = { name: e.name, location: frame, message: e.message };
  if (depth === 0 && e.cause instanceof Error) out.cause = errorValue(e.cause, 1);
  return out;
}

const replacer = (_key: string, value: unknown) => {
  if (value instanceof Error) return errorValue(value);
  if (typeof value === 'bigint') return value.toString();
  return value;
};

export class Logger {
  readonly #service: string;
  readonly #level: LogLevel;
  readonly #sampleRate: number;
  #threshold: number;
  #context: Record<string, unknown> = {};
  #coldStart: boolean;

  constructor(opts: LoggerOptions = {}) {
    const env = opts.env ?? process.env;
    this.#service = opts.serviceName || env.POWERTOOLS_SERVICE_NAME || 'service_undefined';
    this.#level = configuredLevel(env);
    // As Powertools: a cold start only in an on-demand environment (not provisioned concurrency, not SnapStart).
    this.#coldStart = env.AWS_LAMBDA_INITIALIZATION_TYPE === 'on-demand';
    const rate = Number(env.POWERTOOLS_LOGGER_SAMPLE_RATE ?? 0);
    this.#sampleRate = Number.isFinite(rate) && rate > 0 ? Math.min(rate, 1) : 0;
    this.#threshold = LEVELS[this.#level];
  }

  /** The Lambda context of the invocation that starts: its keys go on every line until the next one. */
  addContext(context: Context): void {
    this.#context = {
      cold_start: this.#coldStart,
      function_arn: context.invokedFunctionArn,
      function_memory_size: context.memoryLimitInMB,
      function_name: context.functionName,
      function_request_id: context.awsRequestId,
    };
    this.#coldStart = false;
    const sampled = this.#sampleRate > 0 && Math.random() < this.#sampleRate;
    this.#threshold = sampled ? LEVELS.DEBUG : LEVELS[this.#level];
  }

  /** Forget the previous invocation's keys (before the next one's context is added). */
  resetKeys(): void {
    this.#context = {};
  }

  debug(message: string, extra?: Record<string, unknown>): void {
    this.#write('DEBUG', message, extra);
  }
  info(message: string, extra?: Record<string, unknown>): void {
    this.#write('INFO', message, extra);
  }
  warn(message: string, extra?: Record<string, unknown>): void {
    this.#write('WARN', message, extra);
  }
  error(message: string, extra?: Record<string, unknown>): void {
    this.#write('ERROR', message, extra);
  }

  #write(level: LogLevel, message: string, extra: Record<string, unknown> | undefined): void {
    if (LEVELS[level] < this.#threshold) return;
    const trace = /(?:^|;)Root=([^;]+)/u.exec(process.env._X_AMZN_TRACE_ID ?? '')?.[1];
    const line = {
      level,
      message,
      timestamp: new Date().toISOString(),
      service: this.#service,
      ...this.#context,
      sampling_rate: this.#sampleRate,
      ...(trace ? { xray_trace_id: trace } : {}),
      ...extra,
    };
    const stream = LEVELS[level] >= LEVELS.WARN ? process.stderr : process.stdout;
    stream.write(`${JSON.stringify(line, replacer)}\n`);
  }
}
