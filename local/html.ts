/**
 * HTML output for the local pages. Everything interpolated into `html` templates is escaped unless it is
 * itself the result of `html` — message content is hostile, so there is no other way to build markup here.
 */

export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '`': '&#96;',
};

export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"'`]/g, (c) => ESCAPES[c]!);
}

type Interpolation = SafeHtml | string | number | boolean | null | undefined | Interpolation[];

function render(value: Interpolation): string {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof SafeHtml) return value.value;
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(value);
}

export function html(strings: TemplateStringsArray, ...values: Interpolation[]): SafeHtml {
  let out = strings[0]!;
  values.forEach((v, i) => {
    out += render(v) + strings[i + 1]!;
  });
  return new SafeHtml(out);
}

/** Content-Security-Policy of our own pages: scripts and styles only from our origin, nothing inline. */
export const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "form-action 'self'; frame-src 'self'; base-uri 'none'; frame-ancestors 'none'";

/**
 * CSP for a caught message's HTML body, served into `<iframe sandbox="">`: no scripts, no network (remote
 * images and CSS would be tracking beacons), inline styles and data: images only; `sandbox` again in the header
 * in case the document is opened on its own.
 */
export const MESSAGE_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; base-uri 'none'; " +
  "form-action 'none'; frame-ancestors 'self'; sandbox";

export function page(
  title: string,
  body: SafeHtml,
  opts: { script?: string; bodyClass?: string } = {},
): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/_local/assets/style.css">
${opts.script ? html`<script type="module" src="/_local/assets/${opts.script}"></script>` : ''}
</head>
<body class="${opts.bodyClass ?? ''}">
<header class="topbar">
  <a class="brand" href="/">smtp-send-endpoint <span class="badge">local</span></a>
  <nav><a href="/">Demo form</a><a href="/inbox">Inbox</a></nav>
</header>
<main>
${body}
</main>
</body>
</html>
`.value;
}
