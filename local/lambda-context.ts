/** A minimal Lambda `context` for invoking the handler in-process, with a real remaining-time budget. */
import { randomUUID } from 'node:crypto';
import type { Context } from 'aws-lambda';

export const LOCAL_FUNCTION_NAME = 'smtp-send-endpoint-local';
/** The deployed function's timeout (and the HTTP API integration's 30 s limit). */
export const DEFAULT_BUDGET_MS = 30_000;

export function createLambdaContext(budgetMs = DEFAULT_BUDGET_MS, region = 'us-east-1'): Context {
  const deadline = Date.now() + budgetMs;
  const awsRequestId = randomUUID();
  const unsupported = () => {
    throw new Error('callback-style completion is not supported: return a promise');
  };
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: LOCAL_FUNCTION_NAME,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${region}:000000000000:function:${LOCAL_FUNCTION_NAME}`,
    memoryLimitInMB: '512',
    awsRequestId,
    logGroupName: `/aws/lambda/${LOCAL_FUNCTION_NAME}`,
    logStreamName: `local/[$LATEST]${awsRequestId.replaceAll('-', '')}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: unsupported,
    fail: unsupported,
    succeed: unsupported,
  };
}
