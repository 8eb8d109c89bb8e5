/** Help texts of `smtp-send` (`--help`, `help <command>`). Keep docs/cli.md in step with these. */
import type { CommandName } from './args.ts';
import { DEFAULT_TIMEOUT_SECONDS } from './args.ts';

const CONNECTION = `Connection:
  --url URL               smtp://USER@HOST:587 (STARTTLS, required) or smtps://USER@HOST:465 (implicit TLS).
                          USER is percent-decoded (me%40example.com = me@example.com). A password in the URL
                          is refused.
  --host HOST             Server (instead of --url). IPv4/IPv6 literals or a name.
  --port PORT             Default 587, or 465 with --security tls.
  --security MODE         starttls (default; the upgrade is required), tls (implicit TLS) or none (clear
                          text: only to 127.0.0.1/::1/localhost unless --allow-plaintext).
  --user USER             Log in as USER (AUTH). Without a user no AUTH is attempted.
  --password-env NAME     Read the password from environment variable NAME. Without it the password is
                          asked at a prompt with echo off (only when stdin is a terminal).
                          It is never taken on the command line.
  --auth MECH             plain, login or xoauth2. Default: the best one the server offers (PLAIN, LOGIN).
  --token-env NAME        OAuth 2.0 access token for --auth xoauth2, from environment variable NAME.
  --oauth-client-id ID    With --auth xoauth2: fetch the token here (client_credentials) for app ID,
  --oauth-client-secret-env NAME
                          with the client secret from environment variable NAME,
  --oauth-token-url URL   from this token endpoint (https), or
  --oauth-tenant TENANT   from Microsoft Entra ID's endpoint of this tenant.
  --oauth-scope SCOPE     Default https://outlook.office365.com/.default.
  --secret-file FILE      Everything above from the SMTP secret's JSON, exactly as the function reads it
                          (host, port, security, username, password or OAuth grant, ca; send signs with
                          its dkim keys). Test the deployed configuration before deploying it.
  --ca FILE               Extra trusted CA certificate(s), PEM. Added to the system CAs; the server
                          certificate is always verified.
  --ehlo NAME             Our EHLO name (domain or [address literal]). Default: the domain of --from
                          (verify: of --user when it is an address), else localhost, which is sent
                          only to a loopback server.
  --timeout SECONDS       Overall deadline for the whole session, also caps each phase. Default ${DEFAULT_TIMEOUT_SECONDS}.
  --allow-plaintext       Permit --security none to a non-loopback host, and AUTH in clear text to a
                          loopback one. Think twice.`;

const OUTPUT = `Output:
  --transcript            Print the SMTP transcript (C: client, S: server, I: info), AUTH payloads redacted.
  --json                  Print one JSON object (result or error) on stdout instead of text.
  -h, --help              This help.`;

const EXIT_CODES = `Exit codes:
  0  success
  2  usage: bad option or value, unreadable file, invalid address, missing password
  3  permanent failure: 5xx reply (e.g. 535 bad credentials, 550 recipient refused), certificate or
     security refusal (no STARTTLS offered, AUTH not offered). Retrying will not help.
  4  transient failure: 4xx reply (e.g. 421, 451, 454), connection refused or reset, timeout.
     Retrying later may help.
  130  interrupted (Ctrl-C); with send, the error line says whether the message may have gone out.
  Errors are printed as one line: the phase, the reply code and enhanced code, the server's text,
  whether it is transient, and what is known about delivery (not-sent / accepted / unknown).`;

export const GENERAL_HELP = `smtp-send — check SMTP credentials and send a test message with the endpoint's own SMTP client.

Usage:
  smtp-send verify [connection options] [--transcript] [--json]
  smtp-send send   [connection options] --from ADDR --to ADDR [--to ADDR …] --subject TEXT --text TEXT
                   [--html HTML] [--attach FILE …] [--reply-to ADDR] [--cc ADDR …] [--bcc ADDR …]
  smtp-send help [verify|send]

Commands:
  verify    Connect, EHLO, STARTTLS, AUTH, QUIT. Prints the capabilities, TLS version and cipher, the
            certificate's subject and issuer, the time per phase and the number of round trips.
  send      Compose one message and send it (BDAT when the server offers CHUNKING, else DATA).

${CONNECTION}

${OUTPUT}

${EXIT_CODES}

Examples:
  SMTP_PASSWORD=… smtp-send verify --url smtp://me%40example.com@smtp.example.com:587 --password-env SMTP_PASSWORD
  smtp-send verify --url smtps://me%40example.com@smtp.example.com     # asks for the password
  smtp-send verify --secret-file smtp.json                            # the function's own secret
  smtp-send send --url smtp://me%40example.com@smtp.example.com --password-env SMTP_PASSWORD \\
    --from me@example.com --to you@example.org --subject "Test" --text "Hello" --transcript
`;

export const VERIFY_HELP = `smtp-send verify — check that the server, its certificate and your credentials work, send nothing.

Usage:
  smtp-send verify [connection options] [--transcript] [--json]

Does: connect (and TLS for smtps), read the greeting, EHLO, STARTTLS, EHLO again, AUTH (when a user is
given), QUIT. Prints the server's capabilities after TLS, the TLS protocol and cipher, the certificate's
subject and issuer, the milliseconds spent in each phase and the round trips.

${CONNECTION}

${OUTPUT}

${EXIT_CODES}
`;

export const SEND_HELP = `smtp-send send — compose one message and send it.

Usage:
  smtp-send send [connection options] --from ADDR --to ADDR [--to ADDR …] --subject TEXT
                 (--text TEXT | --html HTML | both) [--attach FILE …] [--reply-to ADDR] [--cc ADDR …]
                 [--bcc ADDR …] [--transcript] [--json]

Message:
  --from ADDR             Sender: "Name <me@example.com>" or me@example.com. Also the envelope sender.
  --to ADDR               Recipient; repeat for more. At least one of --to/--cc/--bcc.
  --cc ADDR, --bcc ADDR   Copy / blind copy (Bcc is never written to a header); repeatable.
  --reply-to ADDR         Reply-To header.
  --subject TEXT          Subject (any Unicode; encoded as needed).
  --text TEXT             Plain-text body.
  --html HTML             HTML body (with --text: multipart/alternative).
  --attach FILE           Attach a file (sent base64, name kept); repeatable.

If the server accepts the message for some recipients but refuses others, the message is sent and the
exit code is 3 (or 4 when every refusal was a 4xx), with the refused recipients listed.

${CONNECTION}

${OUTPUT}

${EXIT_CODES}
`;

export function helpText(topic?: CommandName): string {
  if (topic === 'verify') return VERIFY_HELP;
  if (topic === 'send') return SEND_HELP;
  return GENERAL_HELP;
}
