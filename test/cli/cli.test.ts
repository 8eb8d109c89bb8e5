/**
 * The real `smtp-send` process against real servers: the npm `smtp-server` (STARTTLS / implicit TLS, AUTH) and
 * Exim (CHUNKING). Checks what ops people see: capabilities, TLS, certificate, delivery (parsed with mailparser),
 * the `--json` shape, one-line errors without stack traces, and the exit codes 0/2/3/4.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChunkingServer, startChunkingServer } from '../support/chunking-server.ts';
import { startScriptedServer } from '../support/scripted-server.ts';
import { startSmtpServer, TEST_PASSWORD, TEST_USER, type TestSmtpServer } from '../support/smtp-server.ts';
import { requireTool } from '../support/tools.ts';
import { BIN, CA_FILE, closedPort, hasStackTrace, REPO, runCli, runInProcess } from './run-cli.ts';

const USER_IN_URL = encodeURIComponent(TEST_USER); // tester%40example.com
const ENV = { SMTP_PASSWORD: TEST_PASSWORD };

let starttls: TestSmtpServer;
let implicit: TestSmtpServer;
let exim: ChunkingServer;
let workDir: string;

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'cli-test-'));
  [starttls, implicit] = await Promise.all([startSmtpServer(), startSmtpServer({ secure: true })]);
  exim = await startChunkingServer({ implicitTls: true });
});

afterAll(async () => {
  await Promise.all([starttls?.close(), implicit?.close(), exim?.close()]);
  rmSync(workDir, { recursive: true, force: true });
});

const url = (port: number, scheme = 'smtp') => `${scheme}://${USER_IN_URL}@127.0.0.1:${port}`;

describe('smtp-send help and usage errors (exit 2)', { timeout: 60_000 }, () => {
  it('--help documents every command, option and exit code', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    for (const opt of [
      'verify',
      'send',
      '--url',
      '--host',
      '--port',
      '--security',
      '--user',
      '--password-env',
      '--auth',
      '--token-env',
      '--ca',
      '--ehlo',
      '--timeout',
      '--allow-plaintext',
      '--transcript',
      '--json',
    ]) {
      expect(r.stdout).toContain(opt);
    }
    expect(r.stdout).toMatch(/^\s+2\s+usage/m);
    expect(r.stdout).toMatch(/^\s+3\s+permanent/m);
    expect(r.stdout).toMatch(/^\s+4\s+transient/m);
    const send = await runCli(['help', 'send']);
    expect(send.code).toBe(0);
    for (const opt of ['--from', '--to', '--subject', '--text', '--html', '--attach', '--reply-to']) {
      expect(send.stdout).toContain(opt);
    }
    const verifyHelp = await runCli(['verify', '--help']);
    expect(verifyHelp.code).toBe(0);
    expect(verifyHelp.stdout).toMatch(/^smtp-send verify/);
  });

  it('usage errors (spawned): one line on stderr, a hint, exit 2, nothing sent', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['verify'], /no server/],
      [['verify', '--host', '127.0.0.1', '--bogus'], /Unknown option '--bogus'/],
      [
        ['send', '--host', '127.0.0.1', '--to', 'a@b.example', '--subject', 's', '--text', 't'],
        /--from is required/,
      ],
    ];
    const runs = await Promise.all(cases.map(([args]) => runCli(args)));
    runs.forEach((r, i) => {
      const [args, pattern] = cases[i]!;
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(pattern);
      expect(r.stderr.trim().split('\n')).toEqual([
        expect.stringMatching(/^smtp-send: /),
        "Try 'smtp-send --help'.",
      ]);
      expect(hasStackTrace(r.stderr)).toBe(false);
      expect(r.stdout).toBe('');
    });
    expect(starttls.connections).toBe(0);
  });

  it('usage errors (in-process run()): each names the problem, exit 2', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['frobnicate'], /unknown command "frobnicate"/],
      [['help', 'nope'], /help: unknown topic/],
      [['verify', '--host', '127.0.0.1', '--security', 'ssl'], /--security must be starttls, tls or none/],
      [['verify', '--host', '127.0.0.1', '--port', '99999'], /--port must be 1-65535/],
      [['verify', '--host', '127.0.0.1', '--port'], /argument missing/],
      [['verify', '--host', '127.0.0.1', '--timeout', 'soon'], /--timeout must be seconds/],
      [['verify', '--host', '127.0.0.1', '--to', 'a@b.example'], /--to is only for the send command/],
      [['verify', '--url', 'http://h.example'], /scheme must be smtp:\/\/ .* or smtps:\/\//],
      [['verify', '--url', 'smtp://h.example', '--host', 'x.example'], /cannot be combined/],
      [['verify', '--url', 'smtp://h.example/path'], /no path/],
      [
        ['verify', '--host', '127.0.0.1', '--auth', 'cram-md5', '--user', 'u'],
        /--auth must be plain, login or xoauth2/,
      ],
      [['verify', '--host', '127.0.0.1', '--user', 'u', '--auth', 'xoauth2'], /--token-env/],
      [['verify', '--host', '127.0.0.1', '--password-env', 'X'], /no user/],
      [
        ['verify', '--host', '127.0.0.1', '--user', 'u', '--password-env', 'hunter2!'],
        /NAME of an environment variable/,
      ],
      [
        ['verify', '--host', '127.0.0.1', '--user', 'u', '--password-env', 'NOT_SET_ANYWHERE'],
        /NOT_SET_ANYWHERE is not set/,
      ],
      [['verify', '--host', '127.0.0.1', '--ca', '/nonexistent/ca.pem'], /--ca: cannot read/],
      [['verify', '--host', '127.0.0.1', '--ehlo', 'bad name'], /--ehlo must be/],
      [
        ['send', '--host', '127.0.0.1', '--from', 'a@b.example', '--subject', 's', '--text', 't'],
        /at least one --to/,
      ],
      [
        ['send', '--host', '127.0.0.1', '--from', 'a@b.example', '--to', 'c@d.example', '--text', 't'],
        /--subject/,
      ],
      [
        ['send', '--host', '127.0.0.1', '--from', 'a@b.example', '--to', 'c@d.example', '--subject', 's'],
        /--text or --html/,
      ],
    ];
    for (const [args, pattern] of cases) {
      const r = await runInProcess(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(pattern);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(2);
    }
    expect(starttls.connections).toBe(0);
  });

  it('a password in --url (or a --password flag) is refused and never echoed', async () => {
    const secret = 'Sup3rS3cretInUrl';
    const r = await runCli([
      'verify',
      '--url',
      `smtp://me%40example.com:${secret}@127.0.0.1:${starttls.port}`,
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--url contains a password: refused/);
    expect(r.stderr + r.stdout).not.toContain(secret);
    const j = await runCli(['verify', '--json', '--url', `smtps://u:${secret}@127.0.0.1:1`]);
    expect(j.code).toBe(2);
    expect(JSON.parse(j.stdout)).toMatchObject({ ok: false, exitCode: 2, error: { type: 'usage' } });
    expect(j.stdout).not.toContain(secret);
    const flag = await runCli(['verify', '--host', '127.0.0.1', `--password=${secret}`]);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/there is no --password option/);
    expect(flag.stderr).not.toContain(secret);
    expect(starttls.connections).toBe(0);
  });

  it('a user but no password source and stdin not a terminal: exit 2, asks for --password-env', async () => {
    const r = await runCli(['verify', '--url', url(starttls.port), '--ca', CA_FILE]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/a password is needed for tester@example\.com: use --password-env NAME/);
  });

  it('security none to a non-loopback host is refused before connecting (security refusal: exit 3)', async () => {
    const r = await runInProcess(['verify', '--host', '192.0.2.1', '--security', 'none', '--timeout', '2']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^smtp-send: error in connect: .*clear-text.* permanent, delivery not-sent\n$/);
  });
});

describe('smtp-send verify', { timeout: 60_000 }, () => {
  it('STARTTLS + AUTH: prints capabilities, TLS version and cipher, certificate, timings and round trips', async () => {
    const r = await runCli(
      ['verify', '--url', url(starttls.port), '--password-env', 'SMTP_PASSWORD', '--ca', CA_FILE],
      { env: ENV },
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Greeting: +.*test server ready/m);
    expect(r.stdout).toMatch(/^TLS: +TLSv1\.[23], \S+/m);
    expect(r.stdout).toMatch(/^Certificate: +subject localhost$/m);
    expect(r.stdout).toMatch(/^ +issuer +smtp-send-endpoint DEV-ONLY test CA$/m);
    expect(r.stdout).toMatch(/^Capabilities: .*PIPELINING.*AUTH PLAIN LOGIN/m);
    expect(r.stdout).toMatch(
      /^Timings: +connect [\d.]+ ms, .*ehlo [\d.]+ ms, .*starttls [\d.]+ ms, .*auth [\d.]+ ms/m,
    );
    expect(r.stdout).toMatch(/^Round trips: +\d+$/m);
    expect(r.stdout).toMatch(/^Result: +OK, authenticated as tester@example\.com \(PLAIN\)$/m);
    expect(starttls.authAttempts.at(-1)).toEqual({ method: 'PLAIN', username: TEST_USER });
  });

  it('no --password-env on a terminal: asks with echo off, then authenticates', async () => {
    const script = requireTool('script');
    const cmd = [process.execPath, BIN, 'verify', '--url', url(starttls.port), '--ca', CA_FILE]
      .map((a) => `'${a.replace(/'/g, "'\\''")}'`)
      .join(' ');
    // script(1) gives the CLI a real pseudo-terminal; we type only once the prompt is shown, like a person.
    const child = spawn(script, ['-qfec', cmd, '/dev/null'], {
      cwd: REPO,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', TERM: 'dumb' },
    });
    let out = '';
    let typed = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (!typed && out.includes(`Password for ${TEST_USER}@127.0.0.1: `)) {
        typed = true;
        child.stdin.write(`${TEST_PASSWORD}\r`);
      }
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 45_000);
    const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
    clearTimeout(timer);
    expect(typed).toBe(true);
    expect(code).toBe(0);
    expect(out).toMatch(/Result: +OK, authenticated as tester@example\.com/);
    expect(out).not.toContain(TEST_PASSWORD); // echo was off
  });

  it('--json: one object with tls, capabilities, timings, roundTrips; --auth login is honoured', async () => {
    const r = await runCli(
      [
        'verify',
        '--url',
        url(implicit.port, 'smtps'),
        '--password-env',
        'SMTP_PASSWORD',
        '--auth',
        'login',
        '--ca',
        CA_FILE,
        '--json',
        '--transcript',
      ],
      { env: ENV },
    );
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({
      ok: true,
      command: 'verify',
      server: { host: '127.0.0.1', port: implicit.port, security: 'tls', user: TEST_USER },
      authenticated: true,
      authMechanism: 'LOGIN',
      tls: { protocol: expect.stringMatching(/^TLSv1\.[23]$/), subject: 'localhost' },
      capabilities: { pipelining: true, auth: expect.arrayContaining(['PLAIN', 'LOGIN']) },
    });
    expect(j.roundTrips).toBeGreaterThan(0);
    expect(typeof j.timings.connect).toBe('number');
    expect(j.capabilities.keywords.AUTH).toEqual(expect.arrayContaining(['LOGIN']));
    // the transcript is in the JSON, redacted: no password, neither plain nor base64
    expect(Array.isArray(j.transcript)).toBe(true);
    expect(r.stdout).not.toContain(TEST_PASSWORD);
    expect(r.stdout).not.toContain(Buffer.from(TEST_PASSWORD).toString('base64'));
    expect(implicit.authAttempts.at(-1)).toEqual({ method: 'LOGIN', username: TEST_USER });
  });

  it('--auth xoauth2 takes the access token from --token-env', async () => {
    const seen: Array<{ method: string; username?: string; accessToken?: string }> = [];
    const oauth = await startSmtpServer({
      authMethods: ['XOAUTH2'],
      extra: {
        onAuth(auth, _session, cb) {
          seen.push({ method: auth.method, username: auth.username, accessToken: auth.accessToken });
          if (auth.accessToken === 'ya29.test-token') cb(null, { user: auth.username });
          else cb(Object.assign(new Error('Invalid token'), { responseCode: 535 }));
        },
      },
    });
    try {
      const args = [
        'verify',
        '--url',
        url(oauth.port),
        '--auth',
        'xoauth2',
        '--token-env',
        'TOKEN',
        '--ca',
        CA_FILE,
      ];
      const ok = await runCli(args, { env: { TOKEN: 'ya29.test-token' } });
      expect(ok.stderr).toBe('');
      expect(ok.code).toBe(0);
      expect(ok.stdout).toMatch(/^Result: +OK, authenticated as tester@example\.com \(XOAUTH2\)$/m);
      expect(seen[0]).toEqual({ method: 'XOAUTH2', username: TEST_USER, accessToken: 'ya29.test-token' });
      const bad = await runCli(args, { env: { TOKEN: 'expired' } });
      expect(bad.code).toBe(3);
      expect(bad.stderr).toMatch(/^smtp-send: error in auth: 535 /);
      expect(bad.stderr).not.toContain('expired');
    } finally {
      await oauth.close();
    }
  });

  it('--transcript prints the redacted dialogue', async () => {
    const r = await runCli(
      [
        'verify',
        '--url',
        url(starttls.port),
        '--password-env',
        'SMTP_PASSWORD',
        '--ca',
        CA_FILE,
        '--transcript',
      ],
      { env: ENV },
    );
    expect(r.code).toBe(0);
    // The EHLO name defaults to the domain of --user when it is an address (else of --from, for send).
    expect(r.stdout).toMatch(new RegExp(`^ +\\d+ ms C: EHLO ${TEST_USER.split('@')[1]}$`, 'm'));
    expect(r.stdout).toMatch(/^ +\d+ ms C: STARTTLS$/m);
    expect(r.stdout).toMatch(/^ +\d+ ms C: AUTH PLAIN \*\*\*$/m);
    expect(r.stdout).toMatch(/^ +\d+ ms S: 235/m);
    const b64 = Buffer.from(`\0${TEST_USER}\0${TEST_PASSWORD}`).toString('base64');
    expect(r.stdout).not.toContain(b64);
    expect(r.stdout).not.toContain(TEST_PASSWORD);
  });

  it('535 bad password: exit 3, one line with phase, code, enhanced code, server text, permanent, delivery', async () => {
    const r = await runCli(
      ['verify', '--url', url(starttls.port), '--password-env', 'SMTP_PASSWORD', '--ca', CA_FILE],
      { env: { SMTP_PASSWORD: 'wrong password' } },
    );
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^smtp-send: error in auth: 535 5\.7\.8 .*Invalid username or password.* — .*permanent, delivery not-sent$/,
    );
    expect(hasStackTrace(r.stderr)).toBe(false);
    const j = await runCli(
      ['verify', '--url', url(starttls.port), '--password-env', 'SMTP_PASSWORD', '--ca', CA_FILE, '--json'],
      { env: { SMTP_PASSWORD: 'wrong password' } },
    );
    expect(j.code).toBe(3);
    expect(JSON.parse(j.stdout)).toMatchObject({
      ok: false,
      command: 'verify',
      exitCode: 3,
      error: {
        type: 'smtp',
        phase: 'auth',
        code: 535,
        enhancedCode: '5.7.8',
        transient: false,
        delivery: 'not-sent',
      },
    });
  });

  it('--transcript on a failure: the dialogue up to the 535 (stdout, redacted), the error line on stderr; --json has it too', async () => {
    const args = ['verify', '--url', url(starttls.port), '--password-env', 'SMTP_PASSWORD', '--ca', CA_FILE];
    const env = { SMTP_PASSWORD: 'wrong password' };
    const r = await runInProcess([...args, '--transcript'], env);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/^ +\d+ ms C: AUTH PLAIN \*\*\*$/m);
    expect(r.stdout).toMatch(/^ +\d+ ms S: 535 5\.7\.8 /m);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^smtp-send: error in auth: 535 /);
    const b64 = (pw: string) => Buffer.from(`\0${TEST_USER}\0${pw}`).toString('base64');
    expect(r.stdout + r.stderr).not.toContain('wrong password');
    expect(r.stdout + r.stderr).not.toContain(b64('wrong password'));
    const j = await runInProcess([...args, '--transcript', '--json'], env);
    const out = JSON.parse(j.stdout);
    expect(out.error).toMatchObject({ type: 'smtp', phase: 'auth', code: 535 });
    expect(out.error.roundTrips).toBeGreaterThanOrEqual(6);
    expect(out.error.transcript.map((l: { line: string }) => l.line)).toContain('AUTH PLAIN ***');
    expect(j.stdout).not.toContain(b64('wrong password'));
    // without --transcript: nothing on stdout
    expect((await runInProcess(args, env)).stdout).toBe('');
  });

  it('certificate not trusted (no --ca): exit 3, in the TLS phase, not transient', async () => {
    const r = await runCli(['verify', '--url', url(starttls.port), '--password-env', 'SMTP_PASSWORD'], {
      env: ENV,
    });
    expect(r.code).toBe(3);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^smtp-send: error in starttls: .*(certificate|self.signed|issuer)/i);
    expect(r.stderr).toMatch(/permanent/);
  });

  it('connection refused: exit 4 (transient), one line', async () => {
    const port = await closedPort();
    const r = await runCli(['verify', '--host', '127.0.0.1', '--port', String(port), '--timeout', '5']);
    expect(r.code).toBe(4);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr.trim()).toMatch(
      /^smtp-send: error in connect: .*ECONNREFUSED.* — transient, delivery not-sent$/,
    );
  });

  it('421 greeting: exit 4 (transient) with the server text', async () => {
    const greeter = await startScriptedServer({
      greeting: '421 4.3.2 busy.example Service not available, try later\r\n',
    });
    try {
      const r = await runCli([
        'verify',
        '--host',
        '127.0.0.1',
        '--port',
        String(greeter.port),
        '--timeout',
        '5',
      ]);
      expect(r.code).toBe(4);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(
        /^smtp-send: error in greeting: 421 4\.3\.2 .*Service not available.* transient/,
      );
      expect(greeter.connections).toHaveLength(1);
    } finally {
      await greeter.close();
    }
  });

  it('a server that stops answering: Ctrl-C ends the session at once with exit 130; --timeout gives exit 4', async () => {
    // greets, then never answers (a server that hangs after the greeting)
    const silent = await startScriptedServer({ onCommand: () => ({ silent: true }) });
    const firstCommand = () => silent.connections[0]?.commands[0] ?? '';
    try {
      const args = ['verify', '--host', '127.0.0.1', '--port', String(silent.port), '--security', 'none'];
      const child = spawn(process.execPath, [BIN, ...args, '--timeout', '60'], { cwd: REPO, stdio: 'pipe' });
      child.stdin.end();
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        stderr += d;
      });
      const closed = new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
      const until = Date.now() + 30_000;
      while (!firstCommand().includes('EHLO') && Date.now() < until)
        await new Promise((r) => setTimeout(r, 25));
      expect(firstCommand()).toMatch(/^EHLO /);
      child.kill('SIGINT');
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await closed;
      clearTimeout(killer);
      expect(code).toBe(130);
      expect(stderr.trim().split('\n')).toHaveLength(1);
      expect(stderr).toMatch(/^smtp-send: error in ehlo: /);

      const timed = await runCli([...args, '--timeout', '1']);
      expect(timed.code).toBe(4);
      expect(timed.stderr.trim()).toMatch(/^smtp-send: error in ehlo: .*— transient, delivery not-sent$/);
    } finally {
      await silent.close();
    }
  });

  it('npm run cli path (tsx functions/cli/main.ts) runs the same CLI', async () => {
    const r = await runCli(['help', 'verify'], {
      command: [join(REPO, 'node_modules/.bin/tsx'), 'functions/cli/main.ts'],
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^smtp-send verify/);
  });
});

describe('smtp-send send', { timeout: 60_000 }, () => {
  it('delivers one message with text, html, attachment and Reply-To (parsed with mailparser)', async () => {
    const attachment = join(workDir, 'report.csv');
    writeFileSync(attachment, 'a,b\n1,2\n');
    const before = starttls.messages.length;
    const r = await runCli(
      [
        'send',
        '--url',
        url(starttls.port),
        '--password-env',
        'SMTP_PASSWORD',
        '--ca',
        CA_FILE,
        '--from',
        'Ops Team <ops@example.com>',
        '--to',
        'one@example.com',
        '--to',
        'Two <two@example.org>',
        '--reply-to',
        'replies@example.com',
        '--subject',
        'CLI test — ✓',
        '--text',
        'Hello from smtp-send\n.\nlone dot above',
        '--html',
        '<p>Hello <b>HTML</b></p>',
        '--attach',
        attachment,
      ],
      { env: ENV },
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Accepted: +one@example\.com, two@example\.org$/m);
    expect(r.stdout).toMatch(/^Server reply: +250 .*queued as Q\d+/m);
    expect(r.stdout).toMatch(/^Result: +OK, message accepted for every recipient$/m);
    expect(starttls.messages.length).toBe(before + 1);
    const m = starttls.messages.at(-1)!;
    expect(m.envelope).toEqual({ from: 'ops@example.com', to: ['one@example.com', 'two@example.org'] });
    expect(m.user).toBe(TEST_USER);
    const parsed = await simpleParser(m.raw);
    expect(parsed.subject).toBe('CLI test — ✓');
    expect(parsed.from?.value[0]).toMatchObject({ name: 'Ops Team', address: 'ops@example.com' });
    expect(parsed.replyTo?.value[0]?.address).toBe('replies@example.com');
    expect(parsed.text?.replace(/\r\n/g, '\n').trim()).toBe('Hello from smtp-send\n.\nlone dot above');
    expect(parsed.html).toContain('<b>HTML</b>');
    expect(parsed.attachments).toHaveLength(1);
    expect(parsed.attachments[0]!.filename).toBe('report.csv');
    expect(parsed.attachments[0]!.content.toString()).toBe('a,b\n1,2\n');
    const mid = /^Message-ID: +(<[^>]+>)/m.exec(r.stdout)?.[1];
    expect(parsed.messageId).toBe(mid);
  });

  it('--json shape; a refused recipient makes exit 3, a deferred-only one exit 4', async () => {
    const base = [
      'send',
      '--url',
      url(starttls.port),
      '--password-env',
      'SMTP_PASSWORD',
      '--ca',
      CA_FILE,
      '--json',
    ];
    const msg = ['--from', 'ops@example.com', '--subject', 'partial', '--text', 'x'];
    const r = await runCli([...base, ...msg, '--to', 'ok@example.com', '--to', 'reject-me@example.com'], {
      env: ENV,
    });
    expect(r.code).toBe(3);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({
      ok: false,
      command: 'send',
      exitCode: 3,
      envelope: { from: 'ops@example.com', to: ['ok@example.com', 'reject-me@example.com'] },
      accepted: [{ address: 'ok@example.com', code: 250 }],
      rejected: [{ address: 'reject-me@example.com', code: 550 }],
      response: { code: 250 },
      queueId: expect.any(String),
      tls: { protocol: expect.stringMatching(/^TLSv1/) },
    });
    expect(j.messageId).toMatch(/^<.+@example\.com>$/);
    expect(j.size).toBeGreaterThan(0);
    expect(j.roundTrips).toBeGreaterThan(0);
    const d = await runCli([...base, ...msg, '--to', 'ok@example.com', '--to', 'defer-me@example.com'], {
      env: ENV,
    });
    expect(d.code).toBe(4);
    expect(JSON.parse(d.stdout).rejected).toEqual([expect.objectContaining({ code: 451 })]);
  });

  it('every recipient refused: exit 3, error in rcpt; invalid address: exit 2', async () => {
    const base = ['send', '--url', url(starttls.port), '--password-env', 'SMTP_PASSWORD', '--ca', CA_FILE];
    const r = await runCli(
      [...base, '--from', 'ops@example.com', '--to', 'reject-a@example.com', '--subject', 's', '--text', 'x'],
      { env: ENV },
    );
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^smtp-send: error in rcpt: 550 .* permanent, delivery not-sent$/m);
    const bad = await runCli(
      [...base, '--from', 'ops@example.com', '--to', 'not an address', '--subject', 's', '--text', 'x'],
      {
        env: ENV,
      },
    );
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^smtp-send: invalid message input \(to/);
  });
});

describe('smtp-send against Exim (CHUNKING)', { timeout: 60_000 }, () => {
  it('send goes out as BDAT … LAST (no DATA) and arrives intact', async () => {
    const r = await runCli(
      [
        'send',
        '--url',
        url(exim.port).replace(USER_IN_URL, encodeURIComponent(exim.username)),
        '--password-env',
        'EXIM_PASSWORD',
        '--ca',
        CA_FILE,
        '--from',
        'ops@example.com',
        '--to',
        'someone@example.net',
        '--subject',
        'via exim',
        '--text',
        'BDAT body\n.\n',
        '--transcript',
      ],
      { env: { EXIM_PASSWORD: exim.password } },
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ +\d+ ms C: BDAT \d+ LAST$/m);
    expect(r.stdout).not.toMatch(/ C: DATA$/m);
    expect(r.stdout).toMatch(/^Capabilities: .*CHUNKING/m);
    const [got] = await exim.waitForMessages(1);
    expect(got!.recipients).toEqual(['someone@example.net']);
    const parsed = await simpleParser(got!.raw);
    expect(parsed.subject).toBe('via exim');
    expect(parsed.text?.replace(/\r\n/g, '\n')).toBe('BDAT body\n.\n');
  });

  it('verify over implicit TLS (smtps://) and a bad password (535 → exit 3)', async () => {
    const u = `smtps://${encodeURIComponent(exim.username)}@localhost:${exim.tlsPort}`;
    const ok = await runCli(['verify', '--url', u, '--password-env', 'P', '--ca', CA_FILE], {
      env: { P: exim.password },
    });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^Capabilities: .*CHUNKING/m);
    expect(ok.stdout).toMatch(/^Server: +localhost:\d+ \(tls\)$/m);
    const bad = await runCli(['verify', '--url', u, '--password-env', 'P', '--ca', CA_FILE], {
      env: { P: 'nope' },
    });
    expect(bad.code).toBe(3);
    expect(bad.stderr).toMatch(/^smtp-send: error in auth: 535 /);
  });
});
