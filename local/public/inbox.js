// Live inbox: re-renders the list when the server announces a message (server-sent events), falling back to
// polling every 3 s when the event stream is unavailable. DOM built with textContent only.

const list = document.getElementById('messages');
const count = document.getElementById('count');
const live = document.getElementById('live');

function item(m) {
  const li = document.createElement('li');
  const a = document.createElement('a');
  a.className = 'msg';
  a.href = `/inbox/${encodeURIComponent(m.id)}`;
  const from = document.createElement('span');
  from.className = 'from';
  from.textContent = m.from;
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
  const to = document.createElement('span');
  to.className = 'to';
  to.textContent = `to ${m.to}`;
  const time = document.createElement('time');
  time.dateTime = m.receivedAt;
  time.textContent = `${m.receivedAt.replace('T', ' ').slice(0, 19)} UTC`;
  a.append(from, subject, to, time);
  li.append(a);
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
