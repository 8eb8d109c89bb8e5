/**
 * A real S3-protocol server on 127.0.0.1 for the delivery queue's large messages: the npm `s3rver` (objects in a
 * temporary directory, removed on close). s3rver refuses an access key id it does not know (it does not check the
 * signature itself: measured with a wrong secret key); the caller's key pair (e.g. `local`/`local`) is registered.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';

export interface LocalS3 {
  url: string;
  close(): Promise<void>;
}

interface AwsAccount {
  createKeyPair(accessKeyId: string, secretAccessKey: string): void;
}

export async function startLocalS3(opts: {
  credentials: { accessKeyId: string; secretAccessKey: string };
  buckets?: string[];
}): Promise<LocalS3> {
  // s3rver 3.7's account registry (no public option for another key pair).
  const require = createRequire(import.meta.url);
  const account = require('s3rver/lib/models/account.js') as { DUMMY_ACCOUNT: AwsAccount };
  account.DUMMY_ACCOUNT.createKeyPair(opts.credentials.accessKeyId, opts.credentials.secretAccessKey);
  const dir = mkdtempSync(join(tmpdir(), 'smtp-send-s3-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: dir,
    configureBuckets: (opts.buckets ?? []).map((name) => ({ name, configs: [] })),
  });
  const { port } = await server.run();
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
