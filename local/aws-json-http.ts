/**
 * What the local AWS endpoints (Secrets Manager, SQS) share: an HTTP server on loopback, its URL, closing it, a
 * bounded JSON-object request body, and an AWS JSON protocol response (`application/x-amz-json-1.x` + request id).
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A local AWS endpoint: an HTTP server on loopback whose requests go to `handle`. */
export abstract class LocalAwsEndpoint {
  #server: Server | undefined;
  #url = '';

  /** `http://host:port` — the value for the SDK's `AWS_ENDPOINT_URL_<SERVICE>`. */
  get url(): string {
    return this.#url;
  }

  protected get listening(): boolean {
    return this.#server !== undefined;
  }

  protected abstract handle(req: IncomingMessage, res: ServerResponse): Promise<void>;

  async listen(host = '127.0.0.1', port = 0): Promise<this> {
    const { server, url } = await listenHttp((req, res) => void this.handle(req, res), host, port);
    this.#server = server;
    this.#url = url;
    return this;
  }

  async close(): Promise<void> {
    const s = this.#server;
    this.#server = undefined;
    await closeHttp(s);
  }
}

/** Listen on `host:port` (0 = ephemeral); the URL is `http://host:port` (IPv6 hosts in brackets). */
export async function listenHttp(
  onRequest: (req: IncomingMessage, res: ServerResponse) => void,
  host: string,
  port: number,
): Promise<{ server: Server; url: string }> {
  const server = createServer(onRequest);
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const h = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return { server, url: `http://${h}:${addr.port}` };
}

export async function closeHttp(server: Server | undefined): Promise<void> {
  if (!server) return;
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** The request body as a JSON object (`{}` when empty); `tooLarge()` / `notJson()` make the errors to throw. */
export async function readJsonObject(
  req: IncomingMessage,
  maxBytes: number,
  tooLarge: () => Error,
  notJson: () => Error,
): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw tooLarge();
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw notJson();
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw notJson();
  return v as Record<string, unknown>;
}

/** An AWS JSON protocol answer; `errorType` also goes into `x-amzn-errortype`. */
export function sendAwsJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  contentType: 'application/x-amz-json-1.0' | 'application/x-amz-json-1.1',
  errorType?: string,
): void {
  if (res.destroyed) return;
  const text = JSON.stringify(body);
  const headers: Record<string, string | number> = {
    'content-type': contentType,
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': randomUUID(),
  };
  if (errorType) headers['x-amzn-errortype'] = errorType;
  res.writeHead(status, headers);
  res.end(text);
}
