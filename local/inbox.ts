/**
 * The inbox (`/inbox`): caught messages newest first, live-updating over server-sent events, a message view
 * (headers, text, HTML in `<iframe sandbox="">` under a no-script CSP, attachments, raw source) and JSON at
 * `/inbox/api/messages[/{id}]`. Message content is hostile: every byte of it is escaped or served inert.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { html, MESSAGE_CSP, PAGE_CSP, page, type SafeHtml } from './html.ts';
import { addressText, type CaughtMessage, type MessageStore, summarize } from './mail-catcher.ts';

const ID = '([0-9a-f-]{36})';
const ROUTES = {
  list: /^\/inbox\/?$/,
  events: /^\/inbox\/events$/,
  apiList: /^\/inbox\/api\/messages$/,
  apiOne: new RegExp(`^/inbox/api/messages/${ID}$`),
  view: new RegExp(`^/inbox/${ID}$`),
  body: new RegExp(`^/inbox/${ID}/html$`),
  raw: new RegExp(`^/inbox/${ID}/raw$`),
  attachment: new RegExp(`^/inbox/${ID}/attachments/(\\d{1,4})$`),
};

export interface InboxOptions {
  /** `undefined` when relaying to a real SMTP server (nothing is caught). */
  store: MessageStore | undefined;
  /** Shown when there is no store. */
  relayDescription?: string;
  /** The delivery queue is running (its section and, with the catcher, the SMTP down/up button). */
  queue?: boolean;
}

/** The delivery queue's section: filled by inbox.js from `/_local/queue`. */
function queueSection(opts: InboxOptions): SafeHtml | string {
  if (!opts.queue) return '';
  return html`<section class="queue" id="queue-section">
  <h2>Delivery queue <span id="queue-count" class="badge">0</span></h2>
  <p class="muted">Messages waiting for the SMTP server (queued, sync-then-queue fallbacks, deferred recipients).
  ${opts.store ? html`SMTP server: <strong id="smtp-state">up</strong> <button id="smtp-toggle" type="button" class="secondary">Take SMTP down</button>` : ''}</p>
  <ul id="queued" class="messages"></ul>
</section>`;
}

export function sendText(
  res: ServerResponse,
  status: number,
  contentType: string,
  body: string | Buffer,
  extra: Record<string, string> = {},
): void {
  const buf = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': String(buf.length),
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store',
    ...extra,
  });
  res.end(buf);
}

export function sendPage(res: ServerResponse, status: number, body: string): void {
  sendText(res, status, 'text/html; charset=utf-8', body, {
    'content-security-policy': PAGE_CSP,
    'referrer-policy': 'same-origin',
  });
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  sendText(res, status, 'application/json; charset=utf-8', JSON.stringify(value, null, 2));
}

/** `Content-Disposition: attachment` with an ASCII fallback and the RFC 6266 / RFC 8187 UTF-8 form. */
export function attachmentDisposition(filename: string): string {
  const ascii = filename.replace(/[^A-Za-z0-9._ -]/g, '_').slice(0, 150) || 'attachment';
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(filename).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  )}`;
}

function attachmentName(m: CaughtMessage, index: number): string {
  const a = m.parsed.attachments[index];
  return a?.filename || `attachment-${index + 1}`;
}

/** The full JSON view of one message (parsed + raw). */
export function messageJson(m: CaughtMessage) {
  const p = m.parsed;
  return {
    ...summarize(m),
    envelope: m.envelope,
    session: m.session,
    cc: addressText(p.cc) || undefined,
    replyTo: p.replyTo?.text,
    messageId: p.messageId,
    headers: p.headerLines.map((h) => ({ name: h.key, line: h.line })),
    text: p.text ?? null,
    html: p.html === false ? null : p.html,
    attachments: p.attachments.map((a, i) => ({
      index: i,
      filename: attachmentName(m, i),
      contentType: a.contentType,
      size: a.size,
      contentId: a.cid,
      url: `/inbox/${m.id}/attachments/${i}`,
    })),
    raw: m.raw.toString('utf8'),
  };
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function listItems(store: MessageStore): SafeHtml {
  const messages = store.list();
  if (messages.length === 0) {
    return html`<li class="empty">No messages yet. Submit the <a href="/">demo form</a> and watch this list.</li>`;
  }
  return html`${messages.map((m) => {
    const s = summarize(m);
    return html`<li><a class="msg" href="/inbox/${s.id}">
  <span class="from">${s.from}</span>
  <span class="subject">${s.subject || '(no subject)'}${s.attachments > 0 ? html` <span class="clip" title="attachments">📎 ${s.attachments}</span>` : ''}</span>
  <span class="to">to ${s.to}</span>
  <time datetime="${s.receivedAt}">${s.receivedAt.replace('T', ' ').slice(0, 19)} UTC</time>
</a></li>`;
  })}`;
}

function inboxPage(opts: InboxOptions): string {
  if (!opts.store) {
    return page(
      'Inbox · smtp-send-endpoint (local)',
      html`<section class="card narrow"><h1>Inbox</h1><p>The local server is relaying to a real SMTP server
(${opts.relayDescription ?? 'see the startup banner'}), so nothing is caught here.</p></section>${queueSection(opts)}`,
      { script: 'inbox.js' },
    );
  }
  const count = opts.store.list().length;
  return page(
    'Inbox · smtp-send-endpoint (local)',
    html`<section class="inbox">
  <div class="inbox-head">
    <h1>Inbox <span id="count" class="badge">${count}</span></h1>
    <p class="muted">Messages caught by the local SMTP server (newest first, last ${opts.store.limit} kept in memory).
    <span id="live" class="live">live</span> <button id="clear" type="button" class="secondary">Clear</button></p>
  </div>
  <ul id="messages" class="messages">${listItems(opts.store)}</ul>
</section>${queueSection(opts)}`,
    { script: 'inbox.js' },
  );
}

function headerRow(name: string, value: string | undefined): SafeHtml | string {
  if (!value) return '';
  return html`<tr><th scope="row">${name}</th><td>${value}</td></tr>`;
}

function messagePage(m: CaughtMessage): string {
  const j = messageJson(m);
  const body = html`<article class="message">
  <p><a href="/inbox">← Inbox</a></p>
  <h1 id="subject">${j.subject || '(no subject)'}</h1>
  <table class="headers" id="message-headers">
    ${headerRow('From', j.from)}
    ${headerRow('To', j.to)}
    ${headerRow('Cc', j.cc)}
    ${headerRow('Reply-To', j.replyTo)}
    ${headerRow('Date', j.date)}
    ${headerRow('Message-ID', j.messageId)}
    ${headerRow('Envelope', `MAIL FROM:<${j.envelope.mailFrom}> RCPT TO:${j.envelope.rcptTo.map((r) => `<${r}>`).join(' ')}`)}
    ${headerRow('Session', `${j.session.secure ? 'TLS (STARTTLS)' : 'clear text'}, AUTH as ${j.session.user ?? '(none)'}, EHLO ${j.session.clientHostname}`)}
  </table>
  ${
    j.attachments.length > 0
      ? html`<section class="attachments"><h2>Attachments</h2><ul>${j.attachments.map(
          (a) =>
            html`<li><a href="${a.url}" download>${a.filename}</a> <span class="muted">${a.contentType}, ${formatBytes(a.size)}</span></li>`,
        )}</ul></section>`
      : ''
  }
  ${
    j.html !== null
      ? html`<section><h2>HTML</h2>
  <iframe class="html-body" title="HTML body (sandboxed, no scripts)" sandbox="" referrerpolicy="no-referrer" src="/inbox/${j.id}/html"></iframe></section>`
      : ''
  }
  <section><h2>Text</h2><pre class="text-body" id="text-body">${j.text ?? '(no text part)'}</pre></section>
  <details><summary>All headers</summary><pre class="raw">${j.headers.map((h) => `${h.line}\n`).join('')}</pre></details>
  <details><summary>Raw source (${formatBytes(m.raw.length)})</summary>
    <p><a href="/inbox/${j.id}/raw" download>Download .eml</a></p>
    <pre class="raw" id="raw-source">${j.raw}</pre>
  </details>
</article>`;
  return page(`${j.subject || '(no subject)'} · Inbox (local)`, body);
}

function serveEvents(req: IncomingMessage, res: ServerResponse, store: MessageStore): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    connection: 'keep-alive',
  });
  res.write('retry: 2000\n\n');
  const onMessage = (m: CaughtMessage) =>
    res.write(`event: message\ndata: ${JSON.stringify(summarize(m))}\n\n`);
  const onClear = () => res.write('event: clear\ndata: {}\n\n');
  const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
  heartbeat.unref();
  store.on('message', onMessage);
  store.on('clear', onClear);
  const stop = () => {
    clearInterval(heartbeat);
    store.off('message', onMessage);
    store.off('clear', onClear);
  };
  req.on('close', stop);
  res.on('close', stop);
}

/** Handle `/inbox…`; returns false when the path is not the inbox's. */
export function handleInbox(
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  opts: InboxOptions,
): boolean {
  if (!path.startsWith('/inbox')) return false;
  const method = req.method ?? 'GET';
  const store = opts.store;
  if (ROUTES.list.test(path) && (method === 'GET' || method === 'HEAD')) {
    sendPage(res, 200, inboxPage(opts));
    return true;
  }
  if (!store) {
    sendJson(res, 404, { message: 'Not Found: relaying to a real SMTP server, nothing is caught' });
    return true;
  }
  if (ROUTES.apiList.test(path)) {
    if (method === 'DELETE') {
      store.clear();
      res.writeHead(204).end();
    } else {
      sendJson(res, 200, { messages: store.list().map(summarize) });
    }
    return true;
  }
  if (ROUTES.events.test(path)) {
    serveEvents(req, res, store);
    return true;
  }
  if (serveMessage(res, path, store)) return true;
  sendJson(res, 404, { message: 'Not Found' });
  return true;
}

/** The routes of one caught message (JSON, page, HTML body, raw, an attachment); false for any other path. */
function serveMessage(res: ServerResponse, path: string, store: MessageStore): boolean {
  const find = (re: RegExp) => {
    const m = re.exec(path);
    return m ? { msg: store.get(m[1]!), arg: m[2] } : undefined;
  };
  const one = find(ROUTES.apiOne);
  if (one) {
    if (one.msg) sendJson(res, 200, messageJson(one.msg));
    else sendJson(res, 404, { message: 'No such message' });
    return true;
  }
  const view = find(ROUTES.view);
  if (view) {
    if (view.msg) sendPage(res, 200, messagePage(view.msg));
    else sendPage(res, 404, page('Not found', html`<p>No such message. <a href="/inbox">Inbox</a></p>`));
    return true;
  }
  const htmlBody = find(ROUTES.body);
  if (htmlBody) {
    const body = htmlBody.msg && htmlBody.msg.parsed.html !== false ? htmlBody.msg.parsed.html : undefined;
    if (body === undefined) sendText(res, 404, 'text/plain; charset=utf-8', 'No HTML part\n');
    else
      sendText(res, 200, 'text/html; charset=utf-8', body, {
        'content-security-policy': MESSAGE_CSP,
        'x-frame-options': 'SAMEORIGIN',
      });
    return true;
  }
  const raw = find(ROUTES.raw);
  if (raw) {
    if (!raw.msg) sendText(res, 404, 'text/plain; charset=utf-8', 'No such message\n');
    else
      sendText(res, 200, 'message/rfc822', raw.msg.raw, {
        'content-disposition': attachmentDisposition(`${raw.msg.id}.eml`),
        'content-security-policy': "default-src 'none'; sandbox",
      });
    return true;
  }
  const attachment = find(ROUTES.attachment);
  if (attachment) {
    const index = Number(attachment.arg);
    const a = attachment.msg?.parsed.attachments[index];
    if (!attachment.msg || !a) sendText(res, 404, 'text/plain; charset=utf-8', 'No such attachment\n');
    // Served as opaque bytes whatever the message claims: a hostile text/html "attachment" must not run here.
    else
      sendText(res, 200, 'application/octet-stream', a.content, {
        'content-disposition': attachmentDisposition(attachmentName(attachment.msg, index)),
        'content-security-policy': "default-src 'none'; sandbox",
      });
    return true;
  }
  return false;
}
