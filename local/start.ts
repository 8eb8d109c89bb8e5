/**
 * `npm start`: the whole endpoint on 127.0.0.1 (see docs/local.md).
 *
 *   npm start                                   API :3000 (PORT), mail catcher :2525 (SMTP_PORT)
 *   npm start -- --smtp-url smtps://user@host:465 --from me@example.com    relay for real (SMTP_PASSWORD)
 *   npm start -- --config path/to/endpoint.json
 *   npm start -- --smtp-down                    the local SMTP server refuses connections: form posts are queued
 *   (--ca extra-ca.pem: trust a private relay's CA in addition to the system's)
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  DEFAULT_PORT,
  DEFAULT_SMTP_PORT,
  PortInUseError,
  type StartLocalOptions,
  startLocal,
} from './server.ts';

const USAGE = `usage: npm start [-- --smtp-url smtps://user@host:465 --from sender@example.com [--ca ca.pem]] [--config file.json] [--smtp-down]
  PORT (default ${DEFAULT_PORT}) and SMTP_PORT (default ${DEFAULT_SMTP_PORT}) pick the ports;
  with --smtp-url the password comes from SMTP_PASSWORD and mail is really sent (no local inbox).`;

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

function portFromEnv(name: 'PORT' | 'SMTP_PORT', fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) fail(`${name}=${raw} is not a port number (0-65535)`);
  return n;
}

let args: ReturnType<typeof parse>;
function parse() {
  return parseArgs({
    options: {
      'smtp-url': { type: 'string' },
      from: { type: 'string' },
      config: { type: 'string' },
      ca: { type: 'string' },
      'smtp-down': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
}
try {
  args = parse();
} catch (e) {
  fail(`${(e as Error).message}\n${USAGE}`);
}
if (args.values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

const options: StartLocalOptions = {
  port: portFromEnv('PORT', DEFAULT_PORT),
  smtpPort: portFromEnv('SMTP_PORT', DEFAULT_SMTP_PORT),
  log: (line) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`),
};
if (args.values.config) options.configFile = args.values.config;
if (args.values['smtp-down']) options.smtpDown = true;
if (args.values.from) options.from = args.values.from;
if (args.values['smtp-url']) {
  options.relay = { url: args.values['smtp-url'] };
  if (process.env.SMTP_PASSWORD) options.relay.password = process.env.SMTP_PASSWORD;
  if (args.values.from) options.relay.from = args.values.from;
  if (args.values.ca) {
    try {
      options.relay.ca = readFileSync(args.values.ca, 'utf8');
    } catch (e) {
      fail(`--ca ${args.values.ca}: ${(e as Error).message}`);
    }
  }
}

let stack: Awaited<ReturnType<typeof startLocal>>;
try {
  stack = await startLocal(options);
} catch (e) {
  if (e instanceof PortInUseError) fail(e.message);
  fail(`npm start: ${(e as Error).message}`);
}
process.stdout.write(`${stack.banner()}\n`);

let stopping = false;
const stop = (signal: string) => {
  if (stopping) {
    process.stderr.write(`${signal} again: exiting now\n`);
    process.exit(1);
  }
  stopping = true;
  process.stdout.write(`\n${signal}: stopping…\n`);
  const force = setTimeout(() => process.exit(1), 5_000);
  force.unref();
  stack.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGHUP', () => stop('SIGHUP'));
watchLauncher(() => stop('launcher exited'));

/**
 * `npm start` runs `sh -c "tsx local/start.ts"`; on SIGTERM npm signals `sh`, which dies without passing it on,
 * and tsx + this process would live on as orphans holding the ports. On Linux, watch the parent's parent (the
 * `sh` under npm, or the shell that ran tsx): once it is gone (the parent is re-parented), stop too.
 */
function watchLauncher(onGone: () => void): void {
  const parentOf = (pid: number): number | undefined => {
    try {
      // /proc/<pid>/stat: "pid (comm) state ppid …" — comm may contain spaces and parentheses.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    } catch {
      return undefined;
    }
  };
  const parent = process.ppid;
  const launcher = parentOf(parent);
  if (launcher === undefined || launcher <= 1) return;
  const timer = setInterval(() => {
    const now = parentOf(parent);
    if (now !== undefined && now !== launcher) {
      clearInterval(timer);
      onGone();
    }
  }, 1000);
  timer.unref();
}
