/**
 * Signature Version 4 parity with the AWS SDK: a recording server that a real SDK client sends its request to,
 * and our signer (functions/aws/request.ts) run over the same request — the SDK's signed headers, body, time and
 * credentials — so a test can compare the two Authorization headers byte for byte.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type AwsCredentials, signV4 } from '../../functions/aws/request.ts';

/** Credentials of the shape Lambda's execution role gives (a session token). */
export const TEST_CREDENTIALS = {
  accessKeyId: 'ASIAEXAMPLEKEY000001',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
  sessionToken: 'IQoJb3JpZ2luX2VjE-example-session-token',
};

/** The region and credentials as Lambda sets them in a function's environment. */
export const LAMBDA_ENV = {
  AWS_REGION: 'eu-central-1',
  AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
  AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
  AWS_SESSION_TOKEN: TEST_CREDENTIALS.sessionToken,
};

export interface RecordedRequest {
  headers: IncomingMessage['headers'];
  body: string;
  /** The body's bytes (a binary body is not UTF-8). */
  raw: Buffer;
  url: string;
  method: string;
}

export interface Recorder {
  url: string;
  recorded: RecordedRequest[];
  close(): Promise<void>;
}

/** Records every request and answers each with `answer` (200, `contentType`). */
export async function startRecorder(
  contentType: string,
  answer: (r: RecordedRequest) => unknown,
): Promise<Recorder> {
  const recorded: RecordedRequest[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const r = {
        headers: req.headers,
        body: raw.toString(),
        raw,
        url: req.url ?? '',
        method: req.method ?? '',
      };
      recorded.push(r);
      res.writeHead(200, { 'content-type': contentType });
      res.end(JSON.stringify(answer(r)));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    recorded,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** Our signer's headers for a request the SDK sent (to `base`), over the headers the SDK signed. */
export function signLikeSdk(
  req: RecordedRequest,
  base: string,
  opts: { region: string; service: string; credentials: AwsCredentials },
): Record<string, string> {
  const auth = String(req.headers.authorization);
  const signed = /SignedHeaders=([^,]+)/.exec(auth)![1]!.split(';');
  const amzDate = String(req.headers['x-amz-date']);
  const date = new Date(
    `${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:` +
      `${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`,
  );
  const headers: Record<string, string> = {};
  for (const name of signed) {
    if (['host', 'x-amz-date', 'x-amz-security-token'].includes(name)) continue;
    headers[name] = String(req.headers[name]);
  }
  return signV4({ method: req.method, url: new URL(req.url, base), headers, body: req.raw, date, ...opts });
}
