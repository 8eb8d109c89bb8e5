/**
 * `createHandler({ env, logger, secrets })`: one handler with its own runtime (configuration, secret cache, warm
 * SMTP session), built from the env it is given only. `index.ts` builds the Lambda instance's one from
 * `process.env`; the local server and the tests build their own.
 */
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { isQueuedBody } from '../queue/sqs-delivery-queue.ts';
import { handleDeliveryBatch } from './delivery.ts';
import { handleDirect as directInvoke } from './direct.ts';
import { handleEventBridge, isEventBridgeEvent, type SendEmailEvent } from './eventbridge.ts';
import { asFailed, HttpError } from './failure.ts';
import { handleForm } from './form-route.ts';
import {
  type HttpRequest,
  type HttpResult,
  httpRemainingMs,
  httpRequest,
  isHttpEvent,
  problem,
} from './http.ts';
import { type InvocationLog, newInvocationLog, noteError, writeSummary } from './log.ts';
import { createRuntime, type Runtime, type RuntimeOptions, requireConfig } from './runtime.ts';
import { handleSend } from './send-route.ts';
import { handleSqsRedrive, isSqsEvent } from './sqs.ts';
import { handleStatus } from './status-route.ts';

export type LambdaHandler = ((event: unknown, context: Context) => Promise<unknown>) & {
  runtime: Runtime;
  /** Close the warm SMTP session (tests, local server shutdown). */
  close(): Promise<void>;
};

const FORM_PATH = /^\/forms\/([^/]+)$/u;
const MESSAGE_PATH = /^\/messages\/([^/]+)$/u;

/** The event, classified once: which entry point it came through (HTTP routes refine `http_other` later). */
type Classified =
  | { entryPoint: 'http_other'; event: HttpRequest }
  | { entryPoint: 'sqs_redrive'; event: Parameters<typeof handleSqsRedrive>[0] }
  | { entryPoint: 'eventbridge'; event: SendEmailEvent }
  | { entryPoint: 'direct_invoke'; event: unknown };

function classify(event: unknown): Classified {
  if (isHttpEvent(event)) return { entryPoint: 'http_other', event: httpRequest(event) };
  if (isSqsEvent(event)) return { entryPoint: 'sqs_redrive', event };
  if (isEventBridgeEvent(event)) return { entryPoint: 'eventbridge', event };
  return { entryPoint: 'direct_invoke', event };
}

export function createHandler(opts: RuntimeOptions & { runtime?: Runtime } = {}): LambdaHandler {
  const rt = opts.runtime ?? createRuntime(opts);
  const fn = async (event: unknown, context: Context): Promise<unknown> => {
    const classified = classify(event);
    const log = newInvocationLog(classified.entryPoint);
    rt.logger.resetKeys();
    if (context?.awsRequestId) {
      rt.logger.addContext(context);
      log.requestId = context.awsRequestId;
    }
    const remaining = () =>
      typeof context?.getRemainingTimeInMillis === 'function' ? context.getRemainingTimeInMillis() : 30_000;
    let thrown: unknown;
    try {
      switch (classified.entryPoint) {
        case 'http_other':
          return await http(classified.event, httpRemainingMs(classified.event, remaining()), rt, log);
        case 'sqs_redrive':
          return await sqs(classified.event, remaining, rt, log);
        case 'eventbridge':
          return await handleEventBridge(classified.event, remaining(), rt, log);
        default:
          return await directInvoke(classified.event, remaining(), rt, log, context?.awsRequestId);
      }
    } catch (e) {
      thrown = e;
      throw e;
    } finally {
      writeSummary(rt.logger, log, thrown ? { thrown: (thrown as Error).name } : {});
    }
  };
  return Object.assign(fn, { runtime: rt, close: () => rt.transport.close() });
}

/**
 * SQS records: queued messages (the delivery queue, or ones the dead-letter queue redrives) go to the delivery
 * consumer, anything else to the dead-letter redrive; one `batchItemFailures` answer for both.
 */
async function sqs(
  event: SQSEvent,
  remaining: () => number,
  rt: Runtime,
  log: InvocationLog,
): Promise<SQSBatchResponse> {
  const queued = event.Records.filter((r) => isQueuedBody(r.body));
  if (queued.length === 0) return handleSqsRedrive(event, remaining, rt, log);
  log.entryPoint = 'sqs_delivery';
  const batchItemFailures = await handleDeliveryBatch(queued, remaining, rt, log);
  const others = event.Records.filter((r) => !isQueuedBody(r.body));
  if (others.length > 0) {
    const redrive = newInvocationLog('sqs_redrive');
    if (log.requestId) redrive.requestId = log.requestId;
    const more = await handleSqsRedrive({ Records: others }, remaining, rt, redrive);
    writeSummary(rt.logger, redrive);
    batchItemFailures.push(...more.batchItemFailures);
  }
  return { batchItemFailures };
}

async function http(
  request: HttpRequest,
  remainingMs: number,
  rt: Runtime,
  log: InvocationLog,
): Promise<HttpResult> {
  const { method, path } = request;
  const form = FORM_PATH.exec(path);
  if (form) {
    log.entryPoint = 'http_form';
    const formId = request.pathParameters.formId ?? decodedSegment(form[1]!);
    return handleForm(request, formId, remainingMs, rt, log);
  }
  try {
    if (path === '/send') {
      log.entryPoint = 'http_send';
      requireConfig(rt);
      if (method !== 'POST')
        throw new HttpError('method_not_allowed', `${method} is not allowed on /send; use POST`);
      return await handleSend(request, remainingMs, rt, log);
    }
    const message = MESSAGE_PATH.exec(path);
    if (message) {
      log.entryPoint = 'http_status';
      requireConfig(rt);
      if (method !== 'GET')
        throw new HttpError(
          'method_not_allowed',
          `${method} is not allowed on /messages/{messageId}; use GET`,
        );
      const id = request.pathParameters.messageId ?? decodedSegment(message[1]!);
      return await handleStatus(request, id, rt, log);
    }
    log.outcome = 'not_found';
    throw new HttpError('not_found', `no route for ${method} ${path.slice(0, 200)}`);
  } catch (e) {
    const err = asFailed(e);
    if (err.code === 'internal_error') rt.logger.error('send handler failed', { error: e as Error });
    noteError(log, err);
    return problem(err, {}, log.requestId);
  }
}

/** A path segment percent-decoded; as it is when it is not valid percent-encoding. */
function decodedSegment(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}
