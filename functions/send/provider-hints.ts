/**
 * Provider hints: replies the big providers are known to give (Microsoft 365, Google, Amazon SES), and refusals of
 * their OAuth token endpoints, turned into a stable `hint` code and one sentence that says what to do. Shown by the
 * CLI and in problem details for IAM callers and in logs — never on public form pages (they name the setup).
 * docs/providers.md lists the providers; each rule here has a test against a server answering exactly that text.
 */

export interface ProviderHint {
  /** Stable code, e.g. `microsoft_basic_auth_disabled`. */
  code: string;
  provider: 'microsoft' | 'google' | 'amazon-ses';
  /** One sentence: what the refusal means and what to do. */
  text: string;
}

/** The parts of an SMTP failure a hint looks at (an `SmtpError` has them all). */
export interface SmtpReplyFacts {
  code?: number;
  enhancedCode?: string;
  serverText?: string;
}

interface Rule {
  hint: ProviderHint;
  code?: number;
  enhanced?: string;
  text?: RegExp;
}

const rule = (
  code: string,
  provider: ProviderHint['provider'],
  match: Omit<Rule, 'hint'>,
  text: string,
): Rule => ({ ...match, hint: { code, provider, text } });

const SMTP_RULES: Rule[] = [
  rule(
    'microsoft_basic_auth_disabled',
    'microsoft',
    { enhanced: '5.7.30' },
    'Exchange Online no longer accepts a password for SMTP AUTH (Basic authentication is off): set auth.type ' +
      'to "oauth2" with grant "client_credentials" in the SMTP secret (docs/providers.md, Microsoft 365).',
  ),
  rule(
    'microsoft_smtp_auth_disabled',
    'microsoft',
    { code: 535, enhanced: '5.7.139' },
    'SMTP AUTH is turned off for this tenant or mailbox: enable it for the sending mailbox (Exchange admin ' +
      'center > the mailbox > Manage email apps > Authenticated SMTP, or ' +
      'Set-CASMailbox -Identity <mailbox> -SmtpClientAuthenticationDisabled $false).',
  ),
  rule(
    'microsoft_auth_unsuccessful',
    'microsoft',
    { code: 535, enhanced: '5.7.3' },
    'Exchange Online refused the credentials: with OAuth, the app needs the SMTP.SendAsApp permission with ' +
      'admin consent and its service principal must have FullAccess to the mailbox (Add-MailboxPermission); ' +
      'with a password, check it and that no security default or MFA policy blocks it.',
  ),
  rule(
    'microsoft_send_as_denied',
    'microsoft',
    { enhanced: '5.2.252' },
    'The authenticated mailbox may not send as this From address: send from the mailbox itself, or grant it ' +
      'Send As on the other address (Add-RecipientPermission <address> -AccessRights SendAs -Trustee <mailbox>).',
  ),
  rule(
    'microsoft_send_as_denied',
    'microsoft',
    { code: 550, enhanced: '5.7.60' },
    'The authenticated mailbox may not send as this From address: send from the mailbox itself, or grant it ' +
      'Send As on the other address (Add-RecipientPermission <address> -AccessRights SendAs -Trustee <mailbox>).',
  ),
  rule(
    'google_app_password_required',
    'google',
    { code: 534, enhanced: '5.7.9' },
    'Google wants an app password for this account (2-Step Verification is on): create one for the mailbox and ' +
      'put it in the secret as password, or use auth.type "oauth2" (grant "jwt_bearer" for Workspace).',
  ),
  rule(
    'google_bad_credentials',
    'google',
    { code: 535, enhanced: '5.7.8', text: /Username and Password not accepted|BadCredentials/i },
    'Google did not accept the username and password (or token): check them; a Workspace service account ' +
      'needs domain-wide delegation for the scope https://mail.google.com/ and username must be the mailbox.',
  ),
  rule(
    'google_rate_limited',
    'google',
    { code: 421, enhanced: '4.7.0', text: /gsmtp|support\.google\.com/i },
    'Gmail is temporarily rate limiting this sender: nothing was sent; try again later and send less at once ' +
      '(a lower delivery.maxConnections; Workspace allows about 2,000 messages a day per user).',
  ),
  rule(
    'ses_identity_not_verified',
    'amazon-ses',
    { code: 554, text: /Email address is not verified/i },
    'Amazon SES refuses identities that are not verified in this region: verify the From address or its domain ' +
      'in the SES console of the region of the SMTP host (in the SES sandbox, every recipient too).',
  ),
  rule(
    'ses_throttled',
    'amazon-ses',
    { code: 454, text: /Throttling failure/i },
    'Amazon SES throttled the account (maximum sending rate or daily quota): nothing was sent; lower ' +
      'delivery.maxConnections or ask AWS for a higher sending quota.',
  ),
  rule(
    'ses_bad_credentials',
    'amazon-ses',
    { code: 535, text: /Authentication Credentials Invalid/i },
    'Amazon SES refused the SMTP credentials: the SMTP password is derived from an IAM secret access key for ' +
      'one region; create SMTP credentials for the region of the host (email-smtp.<region>.amazonaws.com).',
  ),
];

/** The hint for an SMTP refusal, when it is one the providers are known to give. */
export function providerHint(reply: SmtpReplyFacts): ProviderHint | undefined {
  const text = reply.serverText ?? '';
  const found = SMTP_RULES.find(
    (r) =>
      (r.code === undefined || r.code === reply.code) &&
      (r.enhanced === undefined || r.enhanced === reply.enhancedCode || text.startsWith(`${r.enhanced} `)) &&
      (r.text === undefined || r.text.test(text)),
  );
  return found?.hint;
}

/**
 * The hint for a refusal of a token endpoint (RFC 6749 §5.2 `error`, Entra ID's `AADSTS…` code in
 * `error_description`).
 */
export function tokenEndpointHint(error: string, description = ''): ProviderHint | undefined {
  const aadsts = /AADSTS(\d+)/.exec(description)?.[1];
  const ms = (code: string, text: string): ProviderHint => ({ code, provider: 'microsoft', text });
  const google = (code: string, text: string): ProviderHint => ({ code, provider: 'google', text });
  switch (aadsts) {
    case '7000215':
      return ms(
        'entra_invalid_client_secret',
        'The client secret is wrong: use the secret VALUE (not its ID) from the app registration > Certificates & secrets.',
      );
    case '7000222':
      return ms(
        'entra_client_secret_expired',
        'The client secret has expired: create a new one in the app registration and update auth.clientSecret.',
      );
    case '700016':
      return ms(
        'entra_app_not_found',
        'No application with this clientId in this tenant: check auth.clientId and auth.tenantId, and that an admin consented to the app in this tenant.',
      );
    case '90002':
      return ms(
        'entra_tenant_not_found',
        'No such tenant: auth.tenantId must be the directory (tenant) ID or a verified domain of the tenant.',
      );
    case '1002012':
      return ms(
        'entra_invalid_scope',
        'The scope is not valid for client_credentials: it must be https://outlook.office365.com/.default.',
      );
  }
  if (error === 'unauthorized_client') {
    return google(
      'google_delegation_missing',
      'The service account is not authorized for this scope: in the Workspace admin console (Security > API controls > Domain-wide delegation) add its client ID with the scope https://mail.google.com/.',
    );
  }
  if (error === 'invalid_grant') {
    return {
      code: 'oauth_invalid_grant',
      provider: aadsts ? 'microsoft' : 'google',
      text: 'The token endpoint refused the grant: a refresh token may be revoked or expired (get a new one), or a service account JWT names a mailbox (username) that does not exist or a clock that is off.',
    };
  }
  return undefined;
}
