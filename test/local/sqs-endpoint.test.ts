/**
 * The local SQS endpoint (local/sqs-endpoint.ts) under the real `@aws-sdk/client-sqs`, and the SAME scenario
 * against `moto_server`: both must behave alike on what the delivery queue relies on (batch send, receive count,
 * visibility timeout and ChangeMessageVisibility, redrive to the dead-letter queue, delay, long polling, errors).
 */
import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SqsEndpoint, startSqsEndpoint } from '../../local/sqs-endpoint.ts';
import { type MotoServer, startMotoServer } from '../support/moto-server.ts';

function client(endpoint: string): SQSClient {
  return new SQSClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    maxAttempts: 1,
  });
}

async function errorName(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'no error';
  } catch (e) {
    return (e as Error).name;
  }
}

/** The scenario; returns what it observed (compared between the two servers). */
async function scenario(sqs: SQSClient, prefix: string): Promise<Record<string, unknown>> {
  const seen: Record<string, unknown> = {};
  const dlqUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `${prefix}-dlq` }))).QueueUrl!;
  const dlqArn = (
    await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }))
  ).Attributes!.QueueArn!;
  const url = (
    await sqs.send(
      new CreateQueueCommand({
        QueueName: `${prefix}-main`,
        Attributes: {
          VisibilityTimeout: '30',
          RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: 2 }),
        },
      }),
    )
  ).QueueUrl!;
  const sent = await sqs.send(
    new SendMessageBatchCommand({
      QueueUrl: url,
      Entries: [
        { Id: 'a', MessageBody: 'body a' },
        {
          Id: 'b',
          MessageBody: 'body b ✓',
          MessageAttributes: { kind: { DataType: 'String', StringValue: 'queued' } },
        },
        { Id: 'c', MessageBody: JSON.stringify({ c: 1 }) },
      ],
    }),
  );
  seen.batchSent = sent.Successful?.map((s) => s.Id).sort();
  const count = async (
    q: string,
    name: 'ApproximateNumberOfMessages' | 'ApproximateNumberOfMessagesDelayed',
  ) =>
    Number(
      (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: q, AttributeNames: [name] }))).Attributes?.[
        name
      ],
    );
  seen.visibleAfterSend = await count(url, 'ApproximateNumberOfMessages');
  const receive = (q: string, wait = 0) =>
    sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: q,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: wait,
        MessageSystemAttributeNames: ['ApproximateReceiveCount'],
        MessageAttributeNames: ['All'],
      }),
    );
  const first = (await receive(url)).Messages ?? [];
  seen.firstReceive = first
    .map(
      (m) =>
        `${m.Body}|${m.Attributes?.ApproximateReceiveCount}|${m.MessageAttributes?.kind?.StringValue ?? ''}`,
    )
    .sort();
  seen.whileInvisible = (await receive(url)).Messages?.length ?? 0;
  const showAgain = async (messages: Array<{ ReceiptHandle?: string }>) => {
    for (const m of messages) {
      await sqs.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: url,
          ReceiptHandle: m.ReceiptHandle!,
          VisibilityTimeout: 0,
        }),
      );
    }
  };
  const [a, ...rest] = [...first].sort((x, y) => (x.Body! < y.Body! ? -1 : 1));
  await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: a!.ReceiptHandle! }));
  await showAgain(rest);
  const second = (await receive(url)).Messages ?? [];
  seen.secondReceive = second.map((m) => `${m.Body}|${m.Attributes?.ApproximateReceiveCount}`).sort();
  await showAgain(second);
  // The third receive finds both over maxReceiveCount: they move to the dead-letter queue instead.
  seen.thirdReceive = (await receive(url)).Messages?.length ?? 0;
  const dead = (await receive(dlqUrl)).Messages ?? [];
  seen.deadLettered = dead.map((m) => m.Body).sort();
  // The message has moved to the dead-letter queue: its old receipt handle is not valid here any more.
  seen.deleteWithStaleHandle = await errorName(
    sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: second[0]!.ReceiptHandle! })),
  );
  seen.noSuchQueue = await errorName(
    sqs.send(new SendMessageCommand({ QueueUrl: `${url}-nope`, MessageBody: 'x' })),
  );
  await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'later', DelaySeconds: 1 }));
  seen.delayedVisible = (await receive(url)).Messages?.length ?? 0;
  seen.delayedCount = await count(url, 'ApproximateNumberOfMessagesDelayed');
  const polled = (await receive(url, 5)).Messages ?? [];
  seen.longPoll = polled.map((m) => m.Body);
  return seen;
}

describe('local SQS endpoint vs moto_server: same scenario, same behaviour', () => {
  let local: SqsEndpoint;
  let moto: MotoServer;
  beforeAll(async () => {
    [local, moto] = await Promise.all([startSqsEndpoint(), startMotoServer()]);
  }, 40_000);
  afterAll(async () => {
    await Promise.all([local?.close(), moto?.close()]);
  });

  it('behaves as moto_server does', async () => {
    const [ours, theirs] = await Promise.all([
      scenario(client(local.url), 'parity'),
      scenario(client(moto.url), 'parity'),
    ]);
    expect(ours).toEqual({
      batchSent: ['a', 'b', 'c'],
      visibleAfterSend: 3,
      firstReceive: ['body a|1|', 'body b ✓|1|queued', '{"c":1}|1|'],
      whileInvisible: 0,
      secondReceive: ['body b ✓|2', '{"c":1}|2'],
      thirdReceive: 0,
      deadLettered: ['body b ✓', '{"c":1}'],
      deleteWithStaleHandle: 'ReceiptHandleIsInvalid',
      noSuchQueue: 'QueueDoesNotExist',
      delayedVisible: 0,
      delayedCount: 1,
      longPoll: ['later'],
    });
    expect(theirs).toEqual(ours);
  }, 30_000);
});
