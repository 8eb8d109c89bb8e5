/**
 * Lambda event builders in the exact shapes AWS sends (HTTP API payload format 2.0, EventBridge), per the AWS
 * Lambda / API Gateway documentation. The context object is the local server's `createLambdaContext`.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { APIGatewayProxyEventV2, EventBridgeEvent, SQSEvent, SQSRecord } from 'aws-lambda';

export interface HttpEventInit {
  method?: string;
  path: string;
  routeKey?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Force base64 (HTTP API does so for binary media types such as multipart/form-data). */
  base64?: boolean;
  pathParameters?: Record<string, string>;
  sourceIp?: string;
  iam?: boolean;
  stage?: string;
}

export function httpEvent(init: HttpEventInit): APIGatewayProxyEventV2 {
  const method = init.method ?? 'POST';
  const headers: Record<string, string> = {
    'content-length': '0',
    host: 'abc123.execute-api.us-east-1.amazonaws.com',
    'user-agent': 'test-agent/1.0',
    'x-amzn-trace-id': `Root=1-${Date.now().toString(16)}-${randomUUID().replace(/-/g, '').slice(0, 24)}`,
    'x-forwarded-for': init.sourceIp ?? '198.51.100.7',
    'x-forwarded-port': '443',
    'x-forwarded-proto': 'https',
  };
  for (const [k, v] of Object.entries(init.headers ?? {})) headers[k.toLowerCase()] = v;
  const isBuffer = Buffer.isBuffer(init.body);
  const base64 = init.base64 ?? isBuffer;
  let body: string | undefined;
  if (init.body !== undefined) {
    const bytes = isBuffer ? (init.body as Buffer) : Buffer.from(init.body as string, 'utf8');
    headers['content-length'] = String(bytes.length);
    body = base64 ? bytes.toString('base64') : (init.body as string);
  }
  const stage = init.stage ?? '$default';
  const routeKey = init.routeKey ?? `${method} ${init.path}`;
  const now = new Date();
  const event: APIGatewayProxyEventV2 = {
    version: '2.0',
    routeKey,
    rawPath: stage === '$default' ? init.path : `/${stage}${init.path}`,
    rawQueryString: '',
    headers,
    requestContext: {
      accountId: '123456789012',
      apiId: 'abc123',
      domainName: 'abc123.execute-api.us-east-1.amazonaws.com',
      domainPrefix: 'abc123',
      http: {
        method,
        path: stage === '$default' ? init.path : `/${stage}${init.path}`,
        protocol: 'HTTP/1.1',
        sourceIp: init.sourceIp ?? '198.51.100.7',
        userAgent: 'test-agent/1.0',
      },
      requestId: `${randomUUID().slice(0, 8)}=`,
      routeKey,
      stage,
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    isBase64Encoded: base64,
  };
  if (body !== undefined) event.body = body;
  if (init.pathParameters) event.pathParameters = init.pathParameters;
  if (init.iam) {
    (event.requestContext as unknown as Record<string, unknown>).authorizer = {
      iam: {
        accessKey: 'AKIAIOSFODNN7EXAMPLE',
        accountId: '123456789012',
        callerId: 'AIDACKCEVSQ6C2EXAMPLE',
        cognitoIdentity: null,
        principalOrgId: null,
        userArn: 'arn:aws:iam::123456789012:user/sender',
        userId: 'AIDACKCEVSQ6C2EXAMPLE',
      },
    };
  }
  return event;
}

/** `POST /send` as the deployed route delivers it (IAM-authenticated). */
export function sendEvent(body: unknown, headers: Record<string, string> = {}): APIGatewayProxyEventV2 {
  return httpEvent({
    path: '/send',
    iam: true,
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

export function formEvent(
  formId: string,
  init: Omit<HttpEventInit, 'path' | 'routeKey' | 'pathParameters'>,
): APIGatewayProxyEventV2 {
  const method = init.method ?? 'POST';
  return httpEvent({
    ...init,
    method,
    path: `/forms/${formId}`,
    routeKey: `${method} /forms/{formId}`,
    pathParameters: { formId },
  });
}

export function eventBridgeEvent(
  detail: unknown,
  detailType = 'Send Email',
): EventBridgeEvent<string, unknown> {
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': detailType,
    source: 'com.example.orders',
    account: '123456789012',
    time: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    region: 'us-east-1',
    resources: [],
    detail,
  };
}

/** Multipart body with fields and files, as a browser would send it. */
export function multipart(
  fields: Array<[string, string]>,
  files: Array<{ field: string; filename: string; type: string; content: Buffer }>,
): { body: Buffer; contentType: string } {
  const boundary = `----WebKitFormBoundary${randomUUID().replace(/-/g, '').slice(0, 16)}`;
  const parts: Buffer[] = [];
  for (const [name, value] of fields) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n`));
    parts.push(Buffer.from(value, 'utf8'), Buffer.from('\r\n'));
  }
  for (const f of files) {
    parts.push(
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="${f.field}"; filename="${f.filename}"\r\n` +
          `Content-Type: ${f.type}\r\n\r\n`,
      ),
      f.content,
      Buffer.from('\r\n'),
    );
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(parts), contentType: `multipart/form-data; boundary=${boundary}` };
}

export const QUEUE_ARN = 'arn:aws:sqs:us-east-1:123456789012:smtp-send-DeadLetterQueue';
export const FUNCTION_ARN = 'arn:aws:lambda:us-east-1:123456789012:function:smtp-send';

/** One SQS record as the event source mapping delivers it. */
export function sqsRecord(
  body: string,
  opts: { receiveCount?: number; messageAttributes?: SQSRecord['messageAttributes'] } = {},
): SQSRecord {
  const sent = Date.now() - 60_000;
  return {
    messageId: randomUUID(),
    receiptHandle: `AQEB${Buffer.from(randomUUID()).toString('base64')}`,
    body,
    attributes: {
      ApproximateReceiveCount: String(opts.receiveCount ?? 1),
      SentTimestamp: String(sent),
      SenderId: 'AROAEXAMPLEROLEID:awslambda_123_20261126043000',
      ApproximateFirstReceiveTimestamp: String(sent + 50_000),
    },
    messageAttributes: opts.messageAttributes ?? {},
    md5OfBody: createHash('md5').update(body, 'utf8').digest('hex'),
    eventSource: 'aws:sqs',
    eventSourceARN: QUEUE_ARN,
    awsRegion: 'us-east-1',
  };
}

export const sqsEvent = (...records: SQSRecord[]): SQSEvent => ({ Records: records });

/** Lambda's on-failure destination record for an asynchronous invocation that threw. */
export function destinationRecord(
  requestPayload: unknown,
  opts: {
    requestId?: string;
    condition?: 'RetriesExhausted' | 'EventAgeExceeded';
    errorType?: string;
    errorMessage?: string;
  } = {},
): Record<string, unknown> {
  const errorType = opts.errorType ?? 'EventDeliveryError';
  const errorMessage =
    opts.errorMessage ?? '[smtp_unavailable] the mail server is unavailable: connect ECONNREFUSED';
  return {
    version: '1.0',
    timestamp: new Date().toISOString(),
    requestContext: {
      requestId: opts.requestId ?? randomUUID(),
      functionArn: `${FUNCTION_ARN}:$LATEST`,
      condition: opts.condition ?? 'RetriesExhausted',
      approximateInvokeCount: opts.condition === 'EventAgeExceeded' ? 1 : 3,
    },
    requestPayload,
    responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
    responsePayload: {
      errorType,
      errorMessage,
      trace: [`${errorType}: ${errorMessage}`, '    at handleEventBridge (/var/task/index.mjs:1:1)'],
    },
  };
}
