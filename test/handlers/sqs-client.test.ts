/**
 * functions/queue/sqs.ts, the SQS client the delivery queue uses instead of @aws-sdk/client-sqs:
 * - its Signature Version 4 is the SDK's (the real @aws-sdk/client-sqs sends SendMessage to a recording server;
 *   our signer over the same signed headers, body and time gives the same Authorization header), and our client
 *   sends the same JSON body for the same input;
 * - against the local SQS endpoint (what `npm start` and the queue tests run) AND moto_server: what it sends the
 *   SDK receives (body, attributes); ChangeMessageVisibility hides a received message; a missing queue is a
 *   permanent `QueueDoesNotExist`; a body SQS did not get intact (wrong MD5) is an error, as with the SDK.
 */
import { createHash } from 'node:crypto';
import {
  CreateQueueCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AwsError } from '../../functions/aws/request.ts';
import { Sqs, sqsFromEnv } from '../../functions/queue/sqs.ts';
import { startSqsEndpoint } from '../../local/sqs-endpoint.ts';
import { startMotoServer } from '../support/moto-server.ts';
import {
  LAMBDA_ENV,
  type Recorder,
  signLikeSdk,
  startRecorder,
  TEST_CREDENTIALS,
} from '../support/sigv4-parity.ts';

const md5 = (s: string) => createHash('md5').update(s, 'utf8').digest('hex');
let recorder: Recorder;
/** The recorder answers SendMessage as SQS does; `wrongMd5` makes it claim another body arrived. */
let wrongMd5 = false;

beforeAll(async () => {
  recorder = await startRecorder('application/x-amz-json-1.0', (r) => {
    const body = JSON.parse(r.body) as { MessageBody?: string };
    return { MessageId: 'm-1', MD5OfMessageBody: md5(wrongMd5 ? 'other' : (body.MessageBody ?? '')) };
  });
});
afterAll(() => recorder.close());

const input = (queueUrl: string) => ({
  QueueUrl: queueUrl,
  MessageBody: '{"kind":"smtp-send.queued-message","v":1,"content":"SGk="}',
});

describe('the wire request is the SDK’s', () => {
  it("Signature Version 4 of SendMessage matches the SDK's; our body is the SDK's", async () => {
    const url = `${recorder.url}/000000000000/delivery`;
    const sdk = new SQSClient({ region: 'eu-west-1', credentials: TEST_CREDENTIALS, endpoint: recorder.url });
    const ours = new Sqs({ region: 'eu-west-1', credentials: TEST_CREDENTIALS, endpoint: recorder.url });
    recorder.recorded.length = 0;
    await sdk.send(new SendMessageCommand(input(url)));
    expect(await ours.sendMessage(input(url))).toEqual({ MessageId: 'm-1' });
    sdk.destroy();
    ours.destroy();
    const [theirs, mine] = recorder.recorded;
    expect(theirs!.headers['x-amz-target']).toBe('AmazonSQS.SendMessage');
    const signed = signLikeSdk(theirs!, recorder.url, {
      region: 'eu-west-1',
      service: 'sqs',
      credentials: TEST_CREDENTIALS,
    });
    expect(signed.authorization).toBe(String(theirs!.headers.authorization));
    expect(JSON.parse(mine!.body)).toEqual(JSON.parse(theirs!.body));
    expect(mine!.headers['x-amz-target']).toBe('AmazonSQS.SendMessage');
    expect(mine!.headers['content-type']).toBe('application/x-amz-json-1.0');
    expect(String(mine!.headers.authorization)).toMatch(
      /^AWS4-HMAC-SHA256 Credential=ASIAEXAMPLEKEY000001\/\d{8}\/eu-west-1\/sqs\/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature=[0-9a-f]{64}$/,
    );
  });

  it('an answer whose MD5 is not of our body is an error (as the SDK checks it)', async () => {
    const ours = new Sqs({ region: 'eu-west-1', credentials: TEST_CREDENTIALS, endpoint: recorder.url });
    wrongMd5 = true;
    try {
      const err = (await ours.sendMessage(input(`${recorder.url}/q`)).catch((e: unknown) => e)) as AwsError;
      expect([err.name, err.transient]).toEqual(['ChecksumMismatch', false]);
    } finally {
      wrongMd5 = false;
      ours.destroy();
    }
  });

  it('the endpoint: AWS_ENDPOINT_URL_SQS, else AWS_ENDPOINT_URL, else regional', () => {
    expect(sqsFromEnv(LAMBDA_ENV).endpoint.href).toBe('https://sqs.eu-central-1.amazonaws.com/');
    expect(
      sqsFromEnv({
        ...LAMBDA_ENV,
        AWS_ENDPOINT_URL: 'http://127.0.0.1:1/',
        AWS_ENDPOINT_URL_SQS: 'http://127.0.0.1:2/',
      }).endpoint.port,
    ).toBe('2');
  });
});

describe.each([
  [
    'the local SQS endpoint',
    async () => {
      const e = await startSqsEndpoint();
      return { url: e.url, close: () => e.close() };
    },
  ],
  ['moto_server', startMotoServer],
] as const)('against %s', (_name, start) => {
  let server: { url: string; close(): Promise<void> };
  let sdk: SQSClient;
  let ours: Sqs;
  let queueUrl: string;
  beforeAll(async () => {
    server = await start();
    const config = { region: 'us-east-1', credentials: TEST_CREDENTIALS, endpoint: server.url };
    sdk = new SQSClient(config);
    ours = new Sqs(config);
    queueUrl = (await sdk.send(new CreateQueueCommand({ QueueName: 'parity' }))).QueueUrl!;
  }, 60_000);
  afterAll(async () => {
    sdk?.destroy();
    ours?.destroy();
    await server?.close();
  });

  const receive = async (wait = 0) =>
    (
      await sdk.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: 10,
          MessageAttributeNames: ['All'],
          WaitTimeSeconds: wait,
        }),
      )
    ).Messages ?? [];

  it('what our client sends the SDK receives, attributes included; visibility 0 shows a received message again', async () => {
    const sent = await ours.sendMessage({
      QueueUrl: queueUrl,
      MessageBody: 'héllo ✓',
      MessageAttributes: { code: { DataType: 'String', StringValue: 'smtp_rejected' } },
    });
    const [m] = await receive(1);
    expect(m?.MessageId).toBe(sent.MessageId);
    expect(m?.Body).toBe('héllo ✓');
    expect(m?.MessageAttributes?.code).toMatchObject({ DataType: 'String', StringValue: 'smtp_rejected' });
    await ours.changeMessageVisibility({
      QueueUrl: queueUrl,
      ReceiptHandle: m!.ReceiptHandle!,
      VisibilityTimeout: 0,
    });
    expect((await receive(1)).map((x) => x.MessageId)).toEqual([sent.MessageId]);
    const again = await receive(0);
    expect(again).toEqual([]);
  });

  it('a queue that does not exist is a permanent QueueDoesNotExist (one request)', async () => {
    const err = (await ours
      .sendMessage({ QueueUrl: `${queueUrl}-missing`, MessageBody: 'x' })
      .catch((e: unknown) => e)) as AwsError;
    expect(err.name).toMatch(/QueueDoesNotExist|NonExistentQueue/);
    expect(err.transient).toBe(false);
  });
});
