/**
 * The deployable stack: one `SmtpSendEndpoint`, its outputs, and an example `addEventRule` (this stack's own
 * CloudWatch alarms → an email through the endpoint). Environment-agnostic: synthesizes with no AWS account.
 */
import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import { EventField } from 'aws-cdk-lib/aws-events';
import type { Construct } from 'constructs';
import { SmtpSendEndpoint, type SmtpSendEndpointProps } from './smtp-send-endpoint.ts';

export interface SmtpSendEndpointStackProps extends StackProps {
  /** Everything the endpoint construct takes (config, secret, throttles, alarms, ...). */
  readonly endpoint: SmtpSendEndpointProps;
  /**
   * Where the example rule mails this stack's alarm state changes (via the endpoint itself; the address must be
   * allowed by `send.allowedRecipients`). No rule without it.
   */
  readonly alarmEmail?: string;
}

export class SmtpSendEndpointStack extends Stack {
  readonly endpoint: SmtpSendEndpoint;

  constructor(scope: Construct, id: string, props: SmtpSendEndpointStackProps) {
    super(scope, id, props);
    const endpoint = new SmtpSendEndpoint(this, 'Endpoint', props.endpoint);
    this.endpoint = endpoint;
    if (props.alarmEmail) addAlarmEmailRule(endpoint, props.alarmEmail);
    addOutputs(this, endpoint);
  }
}

/** Example of addEventRule: mail the endpoint alarms' state changes (any event → a send request). */
function addAlarmEmailRule(endpoint: SmtpSendEndpoint, email: string): void {
  endpoint.addEventRule('AlarmEmailRule', {
    description: 'Mail state changes of the endpoint alarms (example of addEventRule)',
    eventPattern: {
      source: ['aws.cloudwatch'],
      detailType: ['CloudWatch Alarm State Change'],
      resources: endpoint.alarms.map((a) => a.alarmArn),
    },
    message: {
      to: email,
      subject: `[${EventField.fromPath('$.detail.state.value')}] ${EventField.fromPath('$.detail.alarmName')}`,
      text:
        `Alarm ${EventField.fromPath('$.detail.alarmName')} changed from ` +
        `${EventField.fromPath('$.detail.previousState.value')} to ${EventField.fromPath('$.detail.state.value')} ` +
        `at ${EventField.time} in ${EventField.region} (account ${EventField.account}).`,
    },
  });
}

/** The stack's outputs, in this order: the URLs, names and ARNs an operator needs (a part not built: none). */
function addOutputs(stack: Stack, endpoint: SmtpSendEndpoint): void {
  const outputs: [value: string | undefined, id: string, description?: string][] = [
    [endpoint.url, 'ApiUrl', 'HTTP API base URL'],
    [`${endpoint.url}send`, 'SendUrl', 'POST a send request here, signed with SigV4 (service execute-api)'],
    [
      endpoint.sendInvokeArn,
      'SendInvokeArn',
      'Resource for execute-api:Invoke in the IAM policy of /send callers',
    ],
    [
      `${endpoint.url}forms/{formId}`,
      'FormUrlTemplate',
      'Form action URL: replace {formId} with a form id of the configuration',
    ],
    [
      endpoint.function.functionName,
      'FunctionName',
      'For aws lambda invoke (its logs: the FunctionLogGroup output, not /aws/lambda/<name>)',
    ],
    [
      endpoint.logGroup.logGroupName,
      'FunctionLogGroup',
      "The function's own log group (LoggingConfig): aws logs tail <this>",
    ],
    [endpoint.accessLogGroup.logGroupName, 'AccessLogGroup'],
    [
      endpoint.deadLetterQueue.queueUrl,
      'DeadLetterQueueUrl',
      'Failed asynchronous sends (EventBridge, Event invokes) after 2 retries',
    ],
    [
      endpoint.deadLetterQueue.queueArn,
      'DeadLetterQueueArn',
      'Destination of aws sqs start-message-move-task (moving parked messages back)',
    ],
    [
      endpoint.redriveMappingId,
      'RedriveMappingId',
      'Dead-letter redrive (DLQ -> function), disabled by default: aws lambda update-event-source-mapping --uuid <this> --enabled | --no-enabled',
    ],
    [
      endpoint.deliveryQueue.queueUrl,
      'DeliveryQueueUrl',
      'Queued, sync-then-queue and deferred messages, consumed with maxConcurrency = delivery.maxConnections',
    ],
    [
      endpoint.deliveryBucket.bucketName,
      'DeliveryBucketName',
      'Queued messages over 256 KiB (queued/…), deleted after delivery, expired after 14 days',
    ],
    [
      endpoint.parkedQueue.queueUrl,
      'ParkedQueueUrl',
      'Messages the redrive failed on 3 times, waiting for a human',
    ],
    [
      endpoint.parkedQueue.queueArn,
      'ParkedQueueArn',
      'Source of aws sqs start-message-move-task (moving parked messages back to the DLQ)',
    ],
    [endpoint.smtpSecretId, 'SmtpSecretId', 'SMTP_SECRET_ID of the function'],
    [endpoint.eventBus.eventBusName, 'EventBusName'],
    [
      endpoint.sendRecordsTable?.tableName,
      'SendRecordsTableName',
      'Idempotency records and message status (GET /messages/{messageId})',
    ],
    [endpoint.alarmTopic?.topicArn, 'AlarmTopicArn'],
  ];
  for (const [value, id, description] of outputs) {
    if (value !== undefined) new CfnOutput(stack, id, description ? { description, value } : { value });
  }
}
