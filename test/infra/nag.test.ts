// cdk-nag AwsSolutionsChecks (and aws-cdk-lib's CloudFormation schema validation) over the whole app: zero
// unacknowledged findings. A control case proves the plugin really runs on this tree and fails the synth.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Vpc } from 'aws-cdk-lib/aws-ec2';
import { Key } from 'aws-cdk-lib/aws-kms';
import { Code } from 'aws-cdk-lib/aws-lambda';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../infra/app.ts';
import { SmtpSendEndpoint } from '../../infra/smtp-send-endpoint.ts';
import { buildFixtureBundle, cdkJsonContext, SAMPLE_CONFIG, tempDir } from './helpers.ts';
import { removeIsolatedHome } from './isolate-home.ts';

const work = tempDir('nag');
let bundleDir: string;

interface ValidationReport {
  pluginReports: Array<{ pluginName: string; conclusion: string; violations: Array<{ ruleName: string }> }>;
}

function readReport(outdir: string): ValidationReport {
  const file = join(outdir, 'validation-report.json');
  return existsSync(file)
    ? (JSON.parse(readFileSync(file, 'utf8')) as ValidationReport)
    : { pluginReports: [] };
}

const findings = (report: ValidationReport) =>
  report.pluginReports.flatMap((p) => p.violations.map((v) => `${p.pluginName}: ${v.ruleName}`));

beforeAll(async () => {
  bundleDir = await buildFixtureBundle(join(work.dir, 'bundle'));
}, 60_000);

afterAll(() => {
  work.cleanup();
  removeIsolatedHome();
});

describe('cdk-nag AwsSolutions', () => {
  it('passes the app with every optional part enabled, plus the CloudFormation schema validation', () => {
    const outdir = join(work.dir, 'app');
    const { app } = buildApp({
      outdir,
      context: {
        ...cdkJsonContext(),
        cfnValidation: 'true',
        createSecret: 'true',
        alarmEmail: 'ops@example.com',
        eventSources: 'my.app',
        reservedConcurrency: '5',
        smtpSecretWriteBack: 'true',
      },
      endpoint: { config: SAMPLE_CONFIG, code: Code.fromAsset(bundleDir) },
    });
    // synth throws "Validation failed" on any unacknowledged error; warnings land in the report
    app.synth();
    expect(findings(readReport(outdir))).toEqual([]);
    expect(new AwsSolutionsChecks(app).validateScope(app).violations).toEqual([]);
  }, 180_000);

  it('passes the construct in a VPC, with a CMK and a topic of your own', () => {
    const outdir = join(work.dir, 'vpc');
    const app = new App({ outdir, context: cdkJsonContext(), builtinCloudFormationValidation: false });
    const stack = new Stack(app, 'Vpc');
    const key = new Key(stack, 'SecretsKey', { enableKeyRotation: true });
    const topic = new Topic(stack, 'Ops', { masterKey: key, enforceSSL: true });
    new SmtpSendEndpoint(stack, 'Endpoint', {
      config: SAMPLE_CONFIG,
      code: Code.fromAsset(bundleDir),
      smtpSecret: { secretName: 'relay/smtp' },
      secretsKey: key,
      smtpSecretWriteBack: true,
      alarmTopic: topic,
      vpc: Vpc.fromVpcAttributes(stack, 'Imported', {
        vpcId: 'vpc-12345678',
        availabilityZones: ['eu-west-1a'],
        privateSubnetIds: ['subnet-aaaa1111'],
        privateSubnetRouteTableIds: ['rtb-aaaa1111'],
      }),
    });
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    app.synth();
    expect(findings(readReport(outdir))).toEqual([]);
  }, 120_000);

  it('control: an unacknowledged finding next to the endpoint fails the synth and is named', () => {
    const outdir = join(work.dir, 'control');
    const app = new App({ outdir, context: cdkJsonContext(), builtinCloudFormationValidation: false });
    const stack = new Stack(app, 'Control');
    new SmtpSendEndpoint(stack, 'Endpoint', { config: SAMPLE_CONFIG, code: Code.fromAsset(bundleDir) });
    new Queue(stack, 'PlainQueue'); // no DLQ, no TLS-only policy
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    expect(() => app.synth()).toThrow(/AwsSolutions-SQS3/);
    expect(findings(readReport(outdir)).sort()).toEqual([
      'AwsSolutions: AwsSolutions-SQS3',
      'AwsSolutions: AwsSolutions-SQS4',
    ]);
  }, 120_000);
});
