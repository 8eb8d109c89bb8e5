/**
 * A scripted plain-TCP SMTP peer for fault tests (exact replies, dropped connections, silence). Each connection
 * gets a behaviour chosen by its index, so "fail the first connection, succeed on the second" is easy.
 * Test-only; loopback; every socket is destroyed on close().
 */
import { createServer, type Server, type Socket } from 'node:net';

export type Behaviour =
  | 'ok'
  /** 421 greeting, then close. */
  | 'busy'
  /** Accept the body, then drop the connection without a reply to the final dot. */
  | 'drop-after-data'
  /** Accept the body, never answer (until the client gives up). */
  | 'silent-after-data'
  /** 552 to the final dot. */
  | 'reject-data';

export interface ScriptedServer {
  port: number;
  connections: number;
  /** Messages whose final dot was answered 250. */
  accepted: number;
  /** Final dots received (whatever the answer). */
  dataEnds: number;
  close(): Promise<void>;
}

export async function startScriptedSmtp(
  script: (connectionIndex: number) => Behaviour,
): Promise<ScriptedServer> {
  const sockets = new Set<Socket>();
  const state = { connections: 0, accepted: 0, dataEnds: 0 };
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const behaviour = script(state.connections++);
    if (behaviour === 'busy') {
      socket.end('421 4.3.2 Service busy, try later\r\n');
      return;
    }
    socket.write('220 scripted.test ESMTP\r\n');
    let buffer = '';
    let inData = false;
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      for (;;) {
        if (inData) {
          const end = buffer.indexOf('\r\n.\r\n');
          if (end < 0) return;
          buffer = buffer.slice(end + 5);
          inData = false;
          state.dataEnds++;
          if (behaviour === 'drop-after-data') {
            socket.destroy();
            return;
          }
          if (behaviour === 'silent-after-data') return;
          if (behaviour === 'reject-data') socket.write('552 5.3.4 Message too big for system\r\n');
          else {
            state.accepted++;
            socket.write(`250 2.0.0 Ok: queued as S${state.accepted}\r\n`);
          }
          continue;
        }
        const eol = buffer.indexOf('\r\n');
        if (eol < 0) return;
        const line = buffer.slice(0, eol);
        buffer = buffer.slice(eol + 2);
        const verb = line.split(' ')[0]!.toUpperCase();
        if (verb === 'EHLO') socket.write('250-scripted.test\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n');
        else if (verb === 'HELO') socket.write('250 scripted.test\r\n');
        else if (verb === 'MAIL' || verb === 'RCPT' || verb === 'RSET' || verb === 'NOOP')
          socket.write('250 2.0.0 Ok\r\n');
        else if (verb === 'DATA') {
          inData = true;
          buffer = `\r\n${buffer}`; // the terminator search needs the CRLF before the dot for an empty body
          socket.write('354 End data with <CR><LF>.<CR><LF>\r\n');
        } else if (verb === 'QUIT') {
          socket.end('221 2.0.0 Bye\r\n');
          return;
        } else socket.write('502 5.5.2 Command not recognized\r\n');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return Object.assign(state, {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  }) as ScriptedServer;
}
