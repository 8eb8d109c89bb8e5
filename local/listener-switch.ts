/**
 * Make a listening TCP server refuse connections and take them again, on the same port: `down()` stops listening
 * (a connect gets ECONNREFUSED, exactly what a mail server that is down gives) and drops the open connections (a
 * warm reused session breaks too, as it would), `up()` listens again. Used by `npm start -- --smtp-down` (and the inbox page's button) and by the queue tests.
 */
import type { AddressInfo, Server, Socket } from 'node:net';

export class ListenerSwitch {
  readonly #server: Server;
  readonly #host: string;
  readonly #port: number;
  #down = false;
  readonly #open = new Set<Socket>();

  constructor(server: Server) {
    const addr = server.address() as AddressInfo | null;
    if (!addr) throw new Error('ListenerSwitch needs a server that is listening');
    this.#server = server;
    this.#host = addr.address;
    this.#port = addr.port;
    server.on('connection', (socket: Socket) => {
      this.#open.add(socket);
      socket.once('close', () => this.#open.delete(socket));
    });
  }

  get isDown(): boolean {
    return this.#down;
  }

  down(): Promise<void> {
    if (this.#down) return Promise.resolve();
    this.#down = true;
    // close() stops listening at once; its callback would wait for the open connections, which are dropped instead.
    this.#server.close();
    for (const socket of this.#open) socket.destroy();
    return Promise.resolve();
  }

  async up(): Promise<void> {
    if (!this.#down) return;
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#port, this.#host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    this.#down = false;
  }

  set(down: boolean): Promise<void> {
    return down ? this.down() : this.up();
  }
}
