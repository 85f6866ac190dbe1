// Building the page: elements from data (text only, never markup), notices, errors in
// words, progress for long calls, and the confirmation dialog.

// el('a', {href: '#x', class: 'c', testid: 't', onclick: f}, 'text', child, [more])
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'testid') node.dataset.testid = value;
    else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, '');
    else node.setAttribute(key, String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else if (child instanceof Node) node.appendChild(child);
    else node.appendChild(document.createTextNode(String(child)));
  }
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

export function replace(node, ...children) {
  clear(node);
  append(node, children);
}

// Shows the view at `hash`, rendering it again when it is the one shown.
export function navigate(hash) {
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = hash;
}

// A message above the view that stays until the next one (after a redirect, for example).
export function notify(text) {
  const notice = document.getElementById('notice');
  notice.textContent = text;
  notice.hidden = !text;
}

// An API error in words, with what the server said folded away underneath.
export function errorBox(error) {
  const words = error && error.message ? error.message : String(error);
  const box = el('div', { class: 'error', role: 'alert', testid: 'error' }, el('p', {}, words));
  if (error && error.status !== undefined && error.body) {
    box.appendChild(el('details', {},
      el('summary', {}, `What the server said (HTTP ${error.status})`),
      el('pre', {}, JSON.stringify(error.body, null, 2))));
  }
  return box;
}

// Shows an indeterminate progress bar with a label and the seconds elapsed, and disables
// the form's buttons, while `work(step)` runs; `step(text)` changes the label. An error is
// shown in `status` in words, and the caller gets null.
export async function withProgress(status, form, label, work) {
  const text = el('span', {}, label);
  const elapsed = el('span', { class: 'muted' });
  replace(status, el('div', { class: 'progress', testid: 'progress' }, el('progress', {}), text, ' ', elapsed));
  const started = Date.now();
  const timer = setInterval(() => {
    elapsed.textContent = `${Math.round((Date.now() - started) / 1000)} s`;
  }, 1000);
  const buttons = form ? Array.from(form.querySelectorAll('button')) : [];
  buttons.forEach((b) => { b.disabled = true; });
  try {
    const result = await work((next) => { text.textContent = next; });
    clear(status);
    return result;
  } catch (error) {
    replace(status, errorBox(error));
    return null;
  } finally {
    clearInterval(timer);
    buttons.forEach((b) => { b.disabled = false; });
  }
}

// Asks before something irreversible; resolves true when confirmed.
export function confirmAction({ title, message, detail = '', confirmLabel = 'Delete' }) {
  const dialog = document.getElementById('confirm');
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-message').textContent = message;
  document.getElementById('confirm-detail').textContent = detail;
  document.getElementById('confirm-button').textContent = confirmLabel;
  dialog.returnValue = '';
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'confirm'), { once: true });
    dialog.showModal();
  });
}

export function formatDate(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

// A person's first thumbnail as an <img>, or a placeholder.
export function thumbnail(person, className = 'thumb') {
  const first = Array.isArray(person.thumbnails) ? person.thumbnails[0] : null;
  if (first && typeof first.thumbnail === 'string') {
    return el('img', { class: className, alt: `Face of ${person.name}`, src: `data:image/jpeg;base64,${first.thumbnail}` });
  }
  return el('span', { class: `${className} placeholder` }, '?');
}
