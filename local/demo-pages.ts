/** The demo contact page (`/`) and the thank-you page (`/thanks`), built from the form's configuration. */
import { html, page, type SafeHtml } from './html.ts';

/** The part of a form's configuration (config/endpoint.json `forms.{id}`) the demo page needs. */
export interface DemoFormConfig {
  fields?: Record<
    string,
    { required?: boolean; type?: string; maxLength?: number; label?: string } | undefined
  >;
  honeypot?: string;
  attachments?: { maxFiles?: number; maxFileBytes?: number };
}

const FALLBACK_FIELDS: NonNullable<DemoFormConfig['fields']> = {
  name: { required: true, maxLength: 200 },
  email: { required: true, type: 'email', maxLength: 254 },
  message: { required: true, maxLength: 5000 },
};

function label(name: string): string {
  const words = name.replace(/[_-]+/g, ' ').trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function fieldControls(
  prefix: string,
  fields: NonNullable<DemoFormConfig['fields']>,
  placeholders: Record<string, string>,
): SafeHtml[] {
  return Object.entries(fields).map(([name, spec]) => {
    const id = `${prefix}-${name}`;
    const required = spec?.required === true;
    const long = (spec?.maxLength ?? 0) > 500 || name === 'message';
    const type = spec?.type === 'email' ? 'email' : spec?.type === 'url' ? 'url' : 'text';
    const control = long
      ? html`<textarea id="${id}" name="${name}" rows="5" ${required ? html`required` : ''} ${
          spec?.maxLength ? html`maxlength="${spec.maxLength}"` : ''
        } placeholder="${placeholders[name] ?? ''}"></textarea>`
      : html`<input id="${id}" name="${name}" type="${type}" ${required ? html`required` : ''} ${
          spec?.maxLength ? html`maxlength="${spec.maxLength}"` : ''
        } ${type === 'email' ? html`autocomplete="email"` : name === 'name' ? html`autocomplete="name"` : ''} placeholder="${
          placeholders[name] ?? ''
        }">`;
    return html`<div class="field" data-field="${name}">
  <label for="${id}">${spec?.label ?? label(name)}${required ? html` <span class="req" aria-hidden="true">*</span>` : ''}</label>
  ${control}
  <p class="field-error" id="${id}-error" role="alert" hidden></p>
</div>`;
  });
}

function honeypot(name: string | undefined): SafeHtml | string {
  if (!name) return '';
  return html`<div class="hp" aria-hidden="true"><label>Leave this empty <input type="text" name="${name}" tabindex="-1" autocomplete="off"></label></div>`;
}

export function demoPage(opts: {
  formId: string;
  form: DemoFormConfig | undefined;
  formIds: string[];
}): string {
  const form = opts.form ?? {};
  const fields = form.fields && Object.keys(form.fields).length > 0 ? form.fields : FALLBACK_FIELDS;
  const action = `/forms/${encodeURIComponent(opts.formId)}`;
  const maxFiles = form.attachments?.maxFiles ?? 0;
  const placeholders = { name: 'Ada Lovelace', email: 'ada@example.org', message: 'Hello! I would like to…' };
  const body = html`
<section class="intro">
  <h1>Contact form demo</h1>
  <p>Both forms post to <code>${action}</code> on this server, which turns the request into the same
  HTTP API event API Gateway builds and runs <strong>the same handler code Lambda runs</strong>. The message goes
  through the local SMTP server (STARTTLS + AUTH) and lands in the <a href="/inbox">inbox</a>.</p>
  ${opts.formIds.length > 1 ? html`<p class="muted">Configured forms: ${opts.formIds.map((id, i) => html`${i > 0 ? ', ' : ''}<code>${id}</code>`)}</p>` : ''}
</section>
<div class="cards">
  <section class="card">
    <h2>Plain HTML form</h2>
    <p class="muted">No JavaScript: the browser posts <code>${maxFiles > 0 ? 'multipart/form-data' : 'application/x-www-form-urlencoded'}</code> and follows the 303 to the thank-you page.</p>
    <form id="plain-form" method="post" action="${action}" ${maxFiles > 0 ? html`enctype="multipart/form-data"` : ''}>
      ${fieldControls('plain', fields, placeholders)}
      ${
        maxFiles > 0
          ? html`<div class="field"><label for="plain-attachment">Attachment <span class="muted">(optional, up to ${maxFiles})</span></label>
      <input id="plain-attachment" name="attachment" type="file" ${maxFiles > 1 ? html`multiple` : ''}></div>`
          : ''
      }
      ${honeypot(form.honeypot)}
      <button type="submit">Send</button>
    </form>
  </section>
  <section class="card">
    <h2><code>fetch()</code> variant</h2>
    <p class="muted">Posts with <code>Accept: application/json</code> and shows the result inline; field errors come
    from the problem+json <code>errors[]</code> (browser validation is off so the server's answer shows).</p>
    <form id="fetch-form" method="post" action="${action}" novalidate>
      ${fieldControls('fetch', fields, placeholders)}
      ${honeypot(form.honeypot)}
      <button type="submit">Send with fetch</button>
      <div id="fetch-result" class="result" role="status" aria-live="polite" hidden></div>
    </form>
  </section>
</div>`;
  return page('Contact form demo · smtp-send-endpoint (local)', body, { script: 'demo.js' });
}

export function thanksPage(): string {
  const body = html`
<section class="card narrow thanks">
  <h1>Thank you!</h1>
  <p>Your message was sent. The endpoint answered <code>303 See Other</code> and your browser followed it here.</p>
  <p><a class="button" href="/inbox">Open the inbox</a> <a href="/">Back to the form</a></p>
</section>`;
  return page('Thank you · smtp-send-endpoint (local)', body);
}
