/**
 * Amazon SQS for the delivery queue, built for Lambda: exactly the calls the queue adapter makes (SendMessage,
 * ChangeMessageVisibility), each one signed POST in SQS's AWS JSON 1.0 protocol (`X-Amz-Target:
 * AmazonSQS.<Operation>`) through ../aws/request.ts — region and credentials from the environment Lambda sets,
 * bounded, retried once on a transient failure — instead of `@aws-sdk/client-sqs` (with @smithy/core). As the
 * SDK does, the answer's `MD5OfMessageBody` is checked against the body sent. The endpoint is
 * `AWS_ENDPOINT_URL_SQS`, else `AWS_ENDPOINT_URL`, else the regional one.
 */
import {
  type AwsClientOptions,
  AwsError,
  type AwsJsonProtocol,
  AwsJsonService,
  awsClientOptionsFromEnv,
} from '../aws/request.ts';

/** `node:crypto` at first use, not at import: it stays out of a cold start's init (docs/benchmarks.md). */
const crypto = () => process.getBuiltinModule('node:crypto');

const SQS: AwsJsonProtocol = {
  service: 'sqs',
  targetPrefix: 'AmazonSQS',
  jsonVersion: '1.0',
  transientTypes: new Set([
    'ThrottlingException',
    'RequestThrottled',
    'KmsThrottled',
    'ServiceUnavailable',
    'InternalError',
    'InternalFailure',
    'RequestTimeout',
    'RequestTimeoutException',
  ]),
  // The answers to these calls are a few hundred bytes.
  maxResponseBytes: 64 * 1024,
};

export interface MessageAttribute {
  DataType: 'String';
  StringValue: string;
}

export class Sqs extends AwsJsonService {
  constructor(opts: AwsClientOptions) {
    super(SQS, opts);
  }

  /** The message's id. Throws `AwsError` (`ChecksumMismatch`) when SQS did not get the body we sent. */
  async sendMessage(input: {
    QueueUrl: string;
    MessageBody: string;
    MessageAttributes?: Record<string, MessageAttribute>;
  }): Promise<{ MessageId: string }> {
    const out = await this.client.call('SendMessage', input);
    const md5 = crypto().createHash('md5').update(input.MessageBody, 'utf8').digest('hex');
    if (out.MD5OfMessageBody !== md5) {
      throw new AwsError('ChecksumMismatch', 'the MD5 of the message body SQS received is not ours', {
        transient: false,
      });
    }
    return { MessageId: String(out.MessageId) };
  }

  async changeMessageVisibility(input: {
    QueueUrl: string;
    ReceiptHandle: string;
    VisibilityTimeout: number;
  }): Promise<void> {
    await this.client.call('ChangeMessageVisibility', input);
  }
}

/** The client for this environment (region and credentials as Lambda sets them; throws `ConfigurationError`). */
export function sqsFromEnv(
  env: NodeJS.ProcessEnv,
  opts: Omit<AwsClientOptions, 'region' | 'credentials' | 'endpoint'> = {},
): Sqs {
  return new Sqs({ ...opts, ...awsClientOptionsFromEnv(env, 'AWS_ENDPOINT_URL_SQS') });
}
