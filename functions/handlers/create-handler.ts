/**
 * `createHandler({ env, logger, secrets })`: one handler with its own runtime (configuration, secret cache, warm
 * SMTP session), built from the env it is given only. `index.ts` builds the Lambda instance's one from
 * `process.env`; the local server and the tests build their own.
 */
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { atFirstUse } from '../send/first-use.ts';
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
import {
  type Answered,
  failureOutcome,
  type Handled,
  type Invocation,
  newInvocationLog,
  writeSummary,
} from './log.ts';
import { createRuntime, type Runtime, type RuntimeOptions, requireConfig } from './runtime.ts';
import { handleSend } from './send-route.ts';
import { isSqsEvent } from './sqs-event.ts';
import { handleStatus } from './status-route.ts';

/** Lambda's handler signature: an event and its context in, the answer (or a thrown error) out. */
export type LambdaFunction = (event: unknown, context: Context) => Promise<unknown>;

/** The endpoint's handler: a `LambdaFunction` with its own runtime. */
export type LambdaHandler = LambdaFunction & {
  runtime: Runtime;
  /** Close the warm SMTP session (tests, local server shutdown). */
  close(): Promise<void>;
};

const FORM_PATH = /^\/forms\/([^/]+)$/u;
const MESSAGE_PATH = /^\/messages\/([^/]+)$/u;

/** The event, classified once: which entry point it came through (HTTP routes refine `http_other` later). */
type Classified =
  | { entryPoint: 'http_other'; event: HttpRequest }
  | { entryPoint: 'sqs_redrive'; event: SQSEvent }
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
    const inv: Invocation = {
      rt,
      remainingMs: remaining,
      trace: log.trace,
      entryPoint: classified.entryPoint,
      ...(log.requestId ? { requestId: log.requestId } : {}),
    };
    let handled: Handled;
    try {
      handled = await dispatch(classified, inv);
    } catch (e) {
      // A bug, not a request's failure: the summary line says what was thrown; Lambda reports it.
      handled = { thrown: e as Error, outcome: {} };
    }
    Object.assign(log, handled.outcome);
    writeSummary(rt.logger, log, 'thrown' in handled ? { thrown: handled.thrown.name } : {});
    if ('thrown' in handled) throw handled.thrown;
    return handled.response;
  };
  return Object.assign(fn, { runtime: rt, close: () => rt.transport.close() });
}

/** The entry point's handler for a classified event. */
function dispatch(classified: Classified, inv: Invocation): Promise<Handled> {
  switch (classified.entryPoint) {
    case 'http_other': {
      const request = classified.event;
      return http(request, { ...inv, remainingMs: () => httpRemainingMs(request, inv.remainingMs()) });
    }
    case 'sqs_redrive':
      return sqs(classified.event, inv);
    case 'eventbridge':
      return handleEventBridge(classified.event, inv);
    default:
      return directInvoke(classified.event, inv, inv.requestId);
  }
}

/**
 * The SQS records' code (the delivery consumer and the dead-letter redrive, sqs-records.ts), loaded at the first
 * SQS event. If it cannot be loaded, no record was touched: the error is thrown, and Lambda returns the whole batch
 * to the queue (nothing lost, nothing sent twice; the receive count parks a batch that keeps failing).
 */
const sqsRecords = atFirstUse(
  () => import('./sqs-records.ts'),
  (e) => e as Error,
);

async function sqs(event: SQSEvent, inv: Invocation): Promise<Answered<SQSBatchResponse>> {
  return (await sqsRecords()).handleSqsRecords(event, inv);
}

async function http(request: HttpRequest, inv: Invocation): Promise<Answered<HttpResult>> {
  const { rt } = inv;
  const { method, path } = request;
  const form = FORM_PATH.exec(path);
  if (form) {
    const formId = request.pathParameters.formId ?? decodedSegment(form[1]!);
    return handleForm(request, formId, inv);
  }
  const entryPoint = path === '/send' ? 'http_send' : MESSAGE_PATH.test(path) ? 'http_status' : 'http_other';
  try {
    if (entryPoint === 'http_send') {
      requireConfig(rt);
      if (method !== 'POST')
        throw new HttpError('method_not_allowed', `${method} is not allowed on /send; use POST`);
      const sent = await handleSend(request, inv);
      return { ...sent, outcome: { ...sent.outcome, entryPoint } };
    }
    if (entryPoint === 'http_status') {
      requireConfig(rt);
      if (method !== 'GET')
        throw new HttpError(
          'method_not_allowed',
          `${method} is not allowed on /messages/{messageId}; use GET`,
        );
      const raw = MESSAGE_PATH.exec(path)![1]!;
      const id = request.pathParameters.messageId ?? decodedSegment(raw);
      const status = await handleStatus(request, id, rt);
      return { ...status, outcome: { ...status.outcome, entryPoint } };
    }
    const err = new HttpError('not_found', `no route for ${method} ${path.slice(0, 200)}`);
    return { response: problem(err, {}, inv.requestId), outcome: { ...failureOutcome(err), entryPoint } };
  } catch (e) {
    const err = asFailed(e);
    if (err.code === 'internal_error') rt.logger.error('send handler failed', { error: e as Error });
    return { response: problem(err, {}, inv.requestId), outcome: { ...failureOutcome(err), entryPoint } };
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
