// The fetch() variant of the demo form: posts the fields, shows success inline, or each problem+json
// `errors[]` entry next to its field. Uses textContent only (server text is data, never markup).

const form = document.getElementById('fetch-form');
const result = document.getElementById('fetch-result');

/** The field an error entry points at: `field`, `name`, or the last segment of a JSON pointer. */
function errorField(entry) {
  if (typeof entry.field === 'string') return entry.field;
  if (typeof entry.name === 'string') return entry.name;
  const pointer = entry.pointer ?? entry.path ?? entry.location;
  if (typeof pointer === 'string') return pointer.split('/').filter(Boolean).pop();
  if (Array.isArray(pointer)) return String(pointer[pointer.length - 1]);
  return undefined;
}

function errorText(entry) {
  return entry.detail ?? entry.message ?? entry.title ?? entry.code ?? 'Invalid value';
}

function clearErrors() {
  for (const field of form.querySelectorAll('.field')) {
    field.classList.remove('invalid');
    const p = field.querySelector('.field-error');
    if (p) {
      p.hidden = true;
      p.textContent = '';
    }
    const control = field.querySelector('input, textarea');
    if (control) control.removeAttribute('aria-invalid');
  }
  result.hidden = true;
  result.className = 'result';
  result.textContent = '';
}

function showResult(kind, text) {
  result.hidden = false;
  result.className = `result ${kind}`;
  result.textContent = text;
}

function showFieldError(name, text) {
  const field = form.querySelector(`.field[data-field="${CSS.escape(name)}"]`);
  if (!field) return false;
  field.classList.add('invalid');
  const p = field.querySelector('.field-error');
  p.hidden = false;
  p.textContent = p.textContent ? `${p.textContent} ${text}` : text;
  const control = field.querySelector('input, textarea');
  if (control) control.setAttribute('aria-invalid', 'true');
  return true;
}

form?.addEventListener('submit', async (event) => {
  event.preventDefault();
  clearErrors();
  const button = form.querySelector('button[type="submit"]');
  button.disabled = true;
  try {
    const body = new URLSearchParams();
    for (const [name, value] of new FormData(form)) body.append(name, String(value));
    const response = await fetch(form.action, {
      method: 'POST',
      headers: { accept: 'application/json, application/problem+json' },
      body,
    });
    const type = response.headers.get('content-type') ?? '';
    const data = type.includes('json') ? await response.json().catch(() => ({})) : {};
    if (response.ok) {
      form.reset();
      const id = data.messageId ? ` (Message-ID ${data.messageId})` : '';
      showResult('ok', `Sent! Check the inbox${id}.`);
      return;
    }
    const errors = Array.isArray(data.errors) ? data.errors : [];
    let placed = 0;
    for (const entry of errors) {
      const name = errorField(entry);
      if (name && showFieldError(name, errorText(entry))) placed++;
    }
    const summary = data.title ?? `Request failed (${response.status})`;
    const detail = data.detail && data.detail !== summary ? `: ${data.detail}` : '';
    showResult('error', placed > 0 ? `${summary} — see the highlighted fields.` : `${summary}${detail}`);
  } catch (err) {
    showResult('error', `Network error: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    button.disabled = false;
  }
});
