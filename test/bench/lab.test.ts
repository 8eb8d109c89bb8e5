/**
 * The lab process used by `npm run bench`: peers and proxies in a child process, driven over IPC.
 * Checks that it starts, that its counters are read and reset remotely, and that it goes away.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodemailerClient } from '../../bench/clients.ts';
import { type Lab, startLab } from '../../bench/lab.ts';
import { benchMessage } from '../../bench/message.ts';

let lab: Lab;
beforeAll(async () => {
  lab = await startLab({ withSmtpServerTls: false });
});
afterAll(async () => {
  await lab?.close();
});

describe('bench lab', () => {
  it('offers the smtp-server peer and both Exim peers (the set-up step installs Exim; never skipped)', () => {
    const ids = lab.peers.map((p) => p.id);
    expect(ids).toEqual(['587-pipelining', '587-chunking', '465-chunking']);
  });

  it('counts a client through its proxy, remotely, and resets', async () => {
    const peer = lab.peers.find((p) => p.id === '587-pipelining')!;
    await lab.setDelay(peer.id, 25);
    await lab.reset(peer.id);
    await nodemailerClient.sendOne({ port: peer.proxyPort, security: 'starttls' }, benchMessage(3));
    const seen = await lab.snapshot(peer.id);
    expect(seen.connections).toHaveLength(1);
    expect(seen.roundTrips).toBe(9); // nodemailer 10.6 against a PIPELINING server (protocol notes)
    await lab.reset(peer.id);
    expect((await lab.snapshot(peer.id)).connections).toHaveLength(0);
  });

  it('refuses an unknown peer and closes cleanly', async () => {
    await expect(lab.snapshot('465-pipelining')).rejects.toThrow(/no peer/);
    await lab.close();
    await expect(lab.snapshot('587-pipelining')).rejects.toThrow();
  });
});
