/**
 * CDK app (`cdk.json`: `node --import tsx infra/app.ts`). Reads the endpoint configuration file, validates it with the
 * same schema the function uses, and builds an environment-agnostic stack checked by cdk-nag.
 *
 * Context keys (`npx cdk deploy -c key=value`, or the "context" block of cdk.json):
 * - `config`              endpoint configuration file (default `config/endpoint.json`)
 * - `stackName`           default `SmtpSendEndpoint`
 * - `secretName`          existing SMTP secret by name (default `smtp-send-endpoint/smtp`)
 * - `secretArn`           existing SMTP secret by complete ARN (wins over secretName)
 * - `createSecret`        `true`: create a placeholder secret to fill after the deploy (ignores secretName)
 * - `smtpSecretWriteBack` `true`: the function may PutSecretValue on the SMTP secret (OAuth refresh-token rotation)
 * - `alarmEmail`          subscribe this address to the alarm topic and mail it alarm changes (example rule)
 * - `eventSources`        comma-separated `source` values accepted by the "Send Email" rule (default: any)
 * - `reservedConcurrency` integer; `0`/unset = no reservation (default unset)
 * - `rateLimit`, `burstLimit`, `formsRateLimit`, `formsBurstLimit`   HTTP API throttling
 * - `logLevel`            POWERTOOLS_LOG_LEVEL (default INFO)
 * - `redriveEnabled`      `true`: create the dead-letter redrive mapping enabled (default disabled; operators
 *                         toggle it with `aws lambda update-event-source-mapping`, see docs/deploy.md)
 * - `destroyData`         `true`: delete log groups, both queues, the send records table and a created secret on
 *                         `cdk destroy` (default retain)
 * - `idempotency`         `false`: no send records table (no deduplication, no message status; default on)
 * - `cfnValidation`       `true`: also run aws-cdk-lib's built-in CloudFormation schema validation (WASM engine,
 *                         ~7 s CPU: off by default to keep `cdk synth` fast; the infra tests run it)
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  App,
  type AppProps,
  CloudFormationValidatePlugin,
  RemovalPolicy,
  Tags,
  Validations,
} from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { type EndpointConfig, parseEndpointConfigText } from '../functions/config/endpoint.ts';
import { PROJECT_ROOT, type SmtpSecretSource, type SmtpSendEndpointProps } from './smtp-send-endpoint.ts';
import { SmtpSendEndpointStack } from './stack.ts';

export const DEFAULT_CONFIG_PATH = 'config/endpoint.json';
export const DEFAULT_SECRET_NAME = 'smtp-send-endpoint/smtp';

export interface BuildAppOptions extends AppProps {
  /** Overrides for the construct (tests pass a prebuilt `code` or a fixture `entry`). */
  readonly endpoint?: Partial<SmtpSendEndpointProps>;
  /** Register cdk-nag AwsSolutionsChecks. @default true */
  readonly nag?: boolean;
}

/** Build the app (without synthesizing it). */
export function buildApp(options: BuildAppOptions = {}): { app: App; stack: SmtpSendEndpointStack } {
  const { endpoint: overrides, nag = true, ...appProps } = options;
  // The built-in CloudFormation schema validation is registered below only when asked for (see cfnValidation).
  const app = new App({ builtinCloudFormationValidation: false, ...appProps });
  const ctx = (key: string): string | undefined => {
    const value: unknown = app.node.tryGetContext(key);
    return value === undefined || value === null || value === '' ? undefined : String(value);
  };
  const num = (key: string): number | undefined => {
    const raw = ctx(key);
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < 0)
      throw new Error(`context ${key}=${raw}: expected a non-negative number`);
    return n;
  };

  const config = overrides?.config ?? loadConfig(ctx('config'));
  const alarmEmail = ctx('alarmEmail');
  const reserved = num('reservedConcurrency');
  const rate = num('rateLimit');
  const burst = num('burstLimit');
  const formsRate = num('formsRateLimit');
  const formsBurst = num('formsBurstLimit');
  const logLevel = ctx('logLevel')?.toUpperCase();
  if (logLevel && !['DEBUG', 'INFO', 'WARN', 'ERROR'].includes(logLevel)) {
    throw new Error(`context logLevel=${logLevel}: expected DEBUG, INFO, WARN or ERROR`);
  }
  const secretArn = ctx('secretArn');
  const smtpSecret: SmtpSecretSource = secretArn
    ? { secretArn }
    : ctx('createSecret') === 'true'
      ? { create: true }
      : { secretName: ctx('secretName') ?? DEFAULT_SECRET_NAME };
  const eventSources = ctx('eventSources')
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);

  const endpoint: SmtpSendEndpointProps = {
    config,
    smtpSecret,
    ...(eventSources?.length ? { eventSources } : {}),
    ...(reserved ? { reservedConcurrency: reserved } : {}),
    ...(rate !== undefined || burst !== undefined
      ? { throttle: { rateLimit: rate ?? 10, burstLimit: burst ?? 20 } }
      : {}),
    ...(formsRate !== undefined || formsBurst !== undefined
      ? { formsThrottle: { rateLimit: formsRate ?? 2, burstLimit: formsBurst ?? 5 } }
      : {}),
    ...(logLevel ? { logLevel: logLevel as SmtpSendEndpointProps['logLevel'] } : {}),
    ...(alarmEmail ? { alarmEmails: [alarmEmail] } : {}),
    ...(ctx('redriveEnabled') === 'true' ? { redriveEnabled: true } : {}),
    ...(ctx('smtpSecretWriteBack') === 'true' ? { smtpSecretWriteBack: true } : {}),
    ...(ctx('destroyData') === 'true' ? { removalPolicy: RemovalPolicy.DESTROY } : {}),
    ...(ctx('idempotency') === 'false' ? { idempotency: false } : {}),
    ...overrides,
  };

  const stack = new SmtpSendEndpointStack(app, ctx('stackName') ?? 'SmtpSendEndpoint', {
    description: 'SMTP send endpoint: Lambda + HTTP API (/send, /forms) + EventBridge + DLQ',
    endpoint,
    ...(alarmEmail ? { alarmEmail } : {}),
  });
  Tags.of(stack).add('project', 'smtp-send-endpoint');
  if (nag) Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  if (ctx('cfnValidation') === 'true') Validations.of(app).addPlugins(new CloudFormationValidatePlugin());
  return { app, stack };
}

/**
 * Read and validate the endpoint configuration. An explicitly named file must exist; when the default
 * `config/endpoint.json` is missing the stack deploys with an empty configuration (no forms, `/send` allows no
 * recipient) and says so on stderr.
 */
export function loadConfig(path?: string): EndpointConfig {
  const file = path ?? DEFAULT_CONFIG_PATH;
  const abs = isAbsolute(file) ? file : join(PROJECT_ROOT, file);
  if (!existsSync(abs)) {
    if (path !== undefined) throw new Error(`endpoint configuration ${abs} not found (context "config")`);
    process.stderr.write(
      `warning: ${DEFAULT_CONFIG_PATH} not found; deploying with an empty configuration\n`,
    );
    return parseEndpointConfigText('{}', 'empty default');
  }
  return parseEndpointConfigText(readFileSync(abs, 'utf8'), file);
}

/** Run as the CDK app (`node --import tsx infra/app.ts`), not when imported by tests or another app. */
function isMain(): boolean {
  if (!process.argv[1]) return false;
  try {
    return realpathSync(fileURLToPath(import.meta.url)) === realpathSync(process.argv[1]);
  } catch {
    return false;
  }
}

if (isMain()) {
  buildApp().app.synth();
}
