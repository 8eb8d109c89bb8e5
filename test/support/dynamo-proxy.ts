/**
 * A small HTTP proxy in front of a DynamoDB-protocol server (dynalite) that can HOLD a chosen request: the
 * request is read whole, `hold(match)` decides, and a held request is never forwarded (the test kills its
 * client meanwhile). Everything else is forwarded as is. `seen` lists every operation (`PutItem`, `UpdateItem`, …).
 */
import { createServer, type IncomingMessage, request, type Server } from 'node:http';

export interface HeldRequest {
  operation: string;
  body: string;
}

export interface DynamoProxy {
  url: string;
  seen: string[];
  /** The next request for which `match` is true is held; resolves when it arrives. */
  hold(match: (r: HeldRequest) => boolean): Promise<HeldRequest>;
  /**
   * The next `times` requests for which `match` is true are answered with a (non-retryable) ValidationException;
   * resolves when the first arrives.
   */
  fail(match: (r: HeldRequest) => boolean, times?: number): Promise<HeldRequest>;
  close(): Promise<void>;
}

export async function startDynamoProxy(target: string): Promise<DynamoProxy> {
  const upstream = new URL(target);
  const seen: string[] = [];
  let trap:
    | { match: (r: HeldRequest) => boolean; found: (r: HeldRequest) => void; answer: boolean; times: number }
    | undefined;
  const held = new Set<IncomingMessage>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const operation =
        String(req.headers['x-amz-target'] ?? '')
          .split('.')
          .pop() ?? '';
      seen.push(operation);
      const r = { operation, body: body.toString('utf8') };
      if (trap?.match(r)) {
        const t = trap;
        if (--t.times <= 0) trap = undefined;
        t.found(r);
        if (t.answer) {
          res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0' });
          res.end(
            JSON.stringify({
              __type: 'com.amazon.coral.validate#ValidationException',
              message: 'test fault',
            }),
          );
          return;
        }
        held.add(req);
        req.socket.on('close', () => held.delete(req));
        return; // never forwarded, never answered
      }
      const up = request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: upstream.host },
        },
        (ur) => {
          res.writeHead(ur.statusCode ?? 502, ur.headers);
          ur.pipe(res);
        },
      );
      up.on('error', () => res.destroy());
      up.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    hold: (match) =>
      new Promise((found) => {
        trap = { match, found, answer: false, times: 1 };
      }),
    fail: (match, times = 1) =>
      new Promise((found) => {
        trap = { match, found, answer: true, times };
      }),
    close: () =>
      new Promise((r) => {
        for (const req of held) req.socket.destroy();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
