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

/** The stack's outputs: the URLs, names and ARNs an operator needs. */
function addOutputs(stack: Stack, endpoint: SmtpSendEndpoint): void {
  new CfnOutput(stack, 'ApiUrl', { description: 'HTTP API base URL', value: endpoint.url });
  new CfnOutput(stack, 'SendUrl', {
    description: 'POST a send request here, signed with SigV4 (service execute-api)',
    value: `${endpoint.url}send`,
  });
  new CfnOutput(stack, 'SendInvokeArn', {
    description: 'Resource for execute-api:Invoke in the IAM policy of /send callers',
    value: endpoint.sendInvokeArn,
  });
  new CfnOutput(stack, 'FormUrlTemplate', {
    description: 'Form action URL: replace {formId} with a form id of the configuration',
    value: `${endpoint.url}forms/{formId}`,
  });
  new CfnOutput(stack, 'FunctionName', {
    description: 'For aws lambda invoke (its logs: the FunctionLogGroup output, not /aws/lambda/<name>)',
    value: endpoint.function.functionName,
  });
  new CfnOutput(stack, 'FunctionLogGroup', {
    description: "The function's own log group (LoggingConfig): aws logs tail <this>",
    value: endpoint.logGroup.logGroupName,
  });
  new CfnOutput(stack, 'AccessLogGroup', { value: endpoint.accessLogGroup.logGroupName });
  new CfnOutput(stack, 'DeadLetterQueueUrl', {
    description: 'Failed asynchronous sends (EventBridge, Event invokes) after 2 retries',
    value: endpoint.deadLetterQueue.queueUrl,
  });
  new CfnOutput(stack, 'DeadLetterQueueArn', {
    description: 'Destination of aws sqs start-message-move-task (moving parked messages back)',
    value: endpoint.deadLetterQueue.queueArn,
  });
  new CfnOutput(stack, 'RedriveMappingId', {
    description:
      'Dead-letter redrive (DLQ -> function), disabled by default: aws lambda update-event-source-mapping --uuid <this> --enabled | --no-enabled',
    value: endpoint.redriveMappingId,
  });
  new CfnOutput(stack, 'DeliveryQueueUrl', {
    description:
      'Queued, sync-then-queue and deferred messages, consumed with maxConcurrency = delivery.maxConnections',
    value: endpoint.deliveryQueue.queueUrl,
  });
  new CfnOutput(stack, 'DeliveryBucketName', {
    description: 'Queued messages over 256 KiB (queued/…), deleted after delivery, expired after 14 days',
    value: endpoint.deliveryBucket.bucketName,
  });
  new CfnOutput(stack, 'ParkedQueueUrl', {
    description: 'Messages the redrive failed on 3 times, waiting for a human',
    value: endpoint.parkedQueue.queueUrl,
  });
  new CfnOutput(stack, 'ParkedQueueArn', {
    description: 'Source of aws sqs start-message-move-task (moving parked messages back to the DLQ)',
    value: endpoint.parkedQueue.queueArn,
  });
  new CfnOutput(stack, 'SmtpSecretId', {
    description: 'SMTP_SECRET_ID of the function',
    value: endpoint.smtpSecretId,
  });
  new CfnOutput(stack, 'EventBusName', { value: endpoint.eventBus.eventBusName });
  if (endpoint.sendRecordsTable) {
    new CfnOutput(stack, 'SendRecordsTableName', {
      description: 'Idempotency records and message status (GET /messages/{messageId})',
      value: endpoint.sendRecordsTable.tableName,
    });
  }
  if (endpoint.alarmTopic) new CfnOutput(stack, 'AlarmTopicArn', { value: endpoint.alarmTopic.topicArn });
}
