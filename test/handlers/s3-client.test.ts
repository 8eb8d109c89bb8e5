/**
 * functions/queue/s3.ts, the S3 client for queued messages over 256 KiB, instead of @aws-sdk/client-s3:
 * - its Signature Version 4 is the SDK's: the real @aws-sdk/client-s3 sends PutObject to a recording server, and
 *   our signer over the same signed headers (x-amz-content-sha256 among them), path, query, body and time gives
 *   the same Authorization header;
 * - against s3rver (what `npm start` runs; it checks the access key id, not the signature: measured) and
 *   moto_server: what our client puts the SDK gets back byte for byte and the other way round, also under a key
 *   that needs encoding; a deleted or missing object is a permanent `NoSuchKey`.
 */
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AwsError, sha256 } from '../../functions/aws/request.ts';
import { S3, s3FromEnv } from '../../functions/queue/s3.ts';
import { startLocalS3 } from '../../local/s3-server.ts';
import { startMotoServer } from '../support/moto-server.ts';
import {
  LAMBDA_ENV,
  type Recorder,
  signLikeSdk,
  startRecorder,
  TEST_CREDENTIALS,
} from '../support/sigv4-parity.ts';

const KEYS = { accessKeyId: 'AKIDS3CLIENTTEST', secretAccessKey: 's3-client-test-secret' };
const BUCKET = 'smtp-send-s3-client';
const bytes = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 31) % 256));

let recorder: Recorder;
beforeAll(async () => {
  recorder = await startRecorder('application/xml', () => '');
});
afterAll(() => recorder.close());

describe('the wire request is the SDK’s', () => {
  it("Signature Version 4 of PutObject (payload hash, path, query) matches the SDK's", async () => {
    const sdk = new S3Client({
      region: 'eu-west-1',
      credentials: TEST_CREDENTIALS,
      endpoint: recorder.url,
      forcePathStyle: true,
    });
    recorder.recorded.length = 0;
    await sdk.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: 'queued/a b.eml',
        Body: bytes,
        ContentType: 'message/rfc822',
      }),
    );
    sdk.destroy();
    const req = recorder.recorded[0]!;
    expect(String(req.headers.authorization)).toContain('x-amz-content-sha256');
    // The payload hash our S3 client sends is the SDK's.
    expect(req.headers['x-amz-content-sha256']).toBe(sha256(bytes));
    const ours = signLikeSdk(req, recorder.url, {
      region: 'eu-west-1',
      service: 's3',
      credentials: TEST_CREDENTIALS,
    });
    expect(ours.authorization).toBe(String(req.headers.authorization));
  });

  it('addresses AWS virtual-hosted, a custom endpoint path-style; the endpoint from AWS_ENDPOINT_URL_S3', () => {
    const aws = new S3({ region: 'eu-west-1', credentials: TEST_CREDENTIALS });
    expect(aws.urlOf('bkt', 'queued/x y.eml').href).toBe(
      'https://bkt.s3.eu-west-1.amazonaws.com/queued/x%20y.eml',
    );
    const local = s3FromEnv({ ...LAMBDA_ENV, AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9/' });
    expect(local.urlOf('bkt', 'queued/x.eml').href).toBe('http://127.0.0.1:9/bkt/queued/x.eml');
  });
});

describe.each([
  ['s3rver', () => startLocalS3({ credentials: KEYS, buckets: [BUCKET] })],
  ['moto_server', startMotoServer],
] as const)('against %s', (name, start) => {
  let server: { url: string; close(): Promise<void> };
  let sdk: S3Client;
  let ours: S3;
  beforeAll(async () => {
    server = await start();
    sdk = new S3Client({
      region: 'us-east-1',
      credentials: KEYS,
      endpoint: server.url,
      forcePathStyle: true,
    });
    if (name === 'moto_server') await sdk.send(new CreateBucketCommand({ Bucket: BUCKET }));
    ours = new S3({ region: 'us-east-1', credentials: KEYS, endpoint: server.url });
  }, 60_000);
  afterAll(async () => {
    sdk?.destroy();
    ours?.destroy();
    await server?.close();
  });

  it('what our client puts the SDK gets back, and the other way round; delete; a missing key is NoSuchKey', async () => {
    for (const key of ['queued/0123abcd.eml', "queued/needs encoding (1)!'*.eml"]) {
      await ours.putObject({ Bucket: BUCKET, Key: key, Body: bytes, ContentType: 'message/rfc822' });
      const got = await sdk.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
      expect(Buffer.compare(Buffer.from(await got.Body!.transformToByteArray()), bytes)).toBe(0);
      expect(got.ContentType).toBe('message/rfc822');
    }
    await sdk.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'queued/by-sdk.eml', Body: bytes }));
    expect(
      Buffer.compare(Buffer.from(await ours.getObject({ Bucket: BUCKET, Key: 'queued/by-sdk.eml' })), bytes),
    ).toBe(0);
    await ours.deleteObject({ Bucket: BUCKET, Key: 'queued/by-sdk.eml' });
    const err = (await ours
      .getObject({ Bucket: BUCKET, Key: 'queued/by-sdk.eml' })
      .catch((e: unknown) => e)) as AwsError;
    expect([err.name, err.status, err.transient]).toEqual(['NoSuchKey', 404, false]);
    // Deleting what is not there is not an error (S3 answers 204).
    await ours.deleteObject({ Bucket: BUCKET, Key: 'queued/never.eml' });
  });
});
