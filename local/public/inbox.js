// Live inbox: re-renders the list when the server announces a message (server-sent events), falling back to
// polling every 3 s when the event stream is unavailable. DOM built with textContent only.

const list = document.getElementById('messages');
const count = document.getElementById('count');
const live = document.getElementById('live');

/** One list row: sender (or Message-ID), subject (or state), recipients, time; `href` makes it a link. */
function row({ href, from, subject, to, at }) {
  const li = document.createElement('li');
  const a = document.createElement(href ? 'a' : 'div');
  a.className = 'msg';
  if (href) a.href = href;
  const fromEl = document.createElement('span');
  fromEl.className = 'from';
  fromEl.textContent = from;
  const to_ = document.createElement('span');
  to_.className = 'to';
  to_.textContent = `to ${to}`;
  const time = document.createElement('time');
  time.dateTime = at;
  time.textContent = `${at.replace('T', ' ').slice(0, 19)} UTC`;
  a.append(fromEl, subject, to_, time);
  li.append(a);
  return li;
}

function item(m) {
  const subject = document.createElement('span');
  subject.className = 'subject';
  subject.textContent = m.subject || '(no subject)';
  if (m.attachments > 0) {
    const clip = document.createElement('span');
    clip.className = 'clip';
    clip.title = 'attachments';
    clip.textContent = ` 📎 ${m.attachments}`;
    subject.append(clip);
  }
  const li = row({
    href: `/inbox/${encodeURIComponent(m.id)}`,
    from: m.from,
    subject,
    to: m.to,
    at: m.receivedAt,
  });
  if (m.messageId) li.append(status(m.messageId));
  return li;
}

// The message's status, from the endpoint's own status route (GET /messages/{messageId}; domains only locally).
function status(messageId) {
  const badge = document.createElement('span');
  badge.className = 'status';
  badge.textContent = '…';
  fetch(`/messages/${encodeURIComponent(messageId)}`, { headers: { accept: 'application/json' } })
    .then(async (r) => {
      if (r.status === 404) {
        badge.textContent = 'no status';
        return;
      }
      const s = await r.json();
      badge.dataset.state = s.state;
      const parts = [s.state];
      if (s.reply?.code) parts.push(String(s.reply.code));
      parts.push(`${s.attempts} attempt${s.attempts === 1 ? '' : 's'}`);
      if (s.idempotent) parts.push('idempotent');
      badge.textContent = parts.join(' · ');
      badge.title = `status of ${messageId}${s.reply?.queueId ? ` (queue id ${s.reply.queueId})` : ''}`;
    })
    .catch(() => {
      badge.textContent = 'status unavailable';
    });
  return badge;
}

async function refresh() {
  const response = await fetch('/inbox/api/messages', { headers: { accept: 'application/json' } });
  if (!response.ok) return;
  const { messages } = await response.json();
  count.textContent = String(messages.length);
  if (messages.length === 0) {
    const li = document.createElement('li');
    li.className = 'empty';
    li.textContent = 'No messages yet. Submit the demo form and watch this list.';
    list.replaceChildren(li);
  } else {
    list.replaceChildren(...messages.map(item));
  }
}

let pollTimer;
function poll() {
  if (pollTimer) return;
  pollTimer = setInterval(() => refresh().catch(() => {}), 3000);
}

if (list && 'EventSource' in window) {
  const source = new EventSource('/inbox/events');
  source.addEventListener('open', () => {
    live.classList.add('on');
    live.title = 'live (server-sent events)';
    refresh().catch(() => {});
  });
  source.addEventListener('message', () => refresh().catch(() => {}));
  source.addEventListener('clear', () => refresh().catch(() => {}));
  source.addEventListener('error', () => live.classList.remove('on'));
} else if (list) {
  poll();
}

document.getElementById('clear')?.addEventListener('click', async () => {
  await fetch('/inbox/api/messages', { method: 'DELETE' }).catch(() => {});
  await refresh().catch(() => {});
});

// The delivery queue (npm start runs it): what waits for the SMTP server, and a switch that makes the local SMTP
// server refuse connections (to watch sync-then-queue fall back to the queue, and the queue drain afterwards).
const queued = document.getElementById('queued');
const queueCount = document.getElementById('queue-count');
const smtpState = document.getElementById('smtp-state');
const smtpToggle = document.getElementById('smtp-toggle');

function queuedItem(q) {
  const state = document.createElement('span');
  state.className = 'subject';
  state.textContent = `${q.state} · ${q.reason} · received ${q.receiveCount}×${q.nextTryAt ? ` · next try ${q.nextTryAt.slice(11, 19)} UTC` : ''}`;
  const li = row({ from: q.messageId, subject: state, to: q.to.join(', '), at: q.queuedAt });
  li.append(status(q.messageId));
  return li;
}

async function refreshQueue() {
  const response = await fetch('/_local/queue', { headers: { accept: 'application/json' } });
  if (!response.ok) return;
  const { messages, smtp } = await response.json();
  queueCount.textContent = String(messages.length);
  if (messages.length === 0) {
    const li = document.createElement('li');
    li.className = 'empty';
    li.textContent = 'Nothing is waiting.';
    queued.replaceChildren(li);
  } else queued.replaceChildren(...messages.map(queuedItem));
  if (smtpState && smtp) {
    smtpState.textContent = smtp.down ? 'down (refusing connections)' : 'up';
    smtpToggle.textContent = smtp.down ? 'Bring SMTP back' : 'Take SMTP down';
    smtpToggle.dataset.down = String(smtp.down);
  }
}

if (queued) {
  refreshQueue().catch(() => {});
  setInterval(() => refreshQueue().catch(() => {}), 2000);
}

smtpToggle?.addEventListener('click', async () => {
  const down = smtpToggle.dataset.down !== 'true';
  await fetch('/_local/smtp', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ down }),
  }).catch(() => {});
  await refreshQueue().catch(() => {});
});
