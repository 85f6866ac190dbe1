// The console's entry: sign in and out, and which view the address (#persons, #person/ID,
// #enrol, #search, #collections, #compare, #liveness) shows.

import { api, clearToken, setToken, token } from './api.js';
import { collectionsView } from './collections.js';
import { enrolView } from './enrol.js';
import { el, errorBox, notify, replace } from './dom.js';
import { personView, personsView } from './persons.js';
import { searchView } from './search.js';
import { compareView, livenessView } from './tools.js';

const VIEWS = {
  persons: (root, params) => personsView(root, params),
  enrol: (root) => enrolView(root),
  search: (root) => searchView(root),
  collections: (root) => collectionsView(root),
  compare: (root) => compareView(root),
  liveness: (root) => livenessView(root),
};

const view = document.getElementById('view');
const nav = document.getElementById('nav');
const signInSection = document.getElementById('sign-in');
const signOutButton = document.getElementById('sign-out');

function parseHash() {
  const hash = location.hash.replace(/^#/, '');
  const [path, search] = hash.split('?');
  const [name, id] = path.split('/');
  return { name: name || 'persons', id: id ? decodeURIComponent(id) : null, params: new URLSearchParams(search || '') };
}

// Each render draws into a fresh element and shows it only if no later render started.
let generation = 0;

async function show() {
  if (!token()) {
    signedOut();
    return;
  }
  signInSection.hidden = true;
  nav.hidden = false;
  signOutButton.hidden = false;
  const { name, id, params } = parseHash();
  for (const link of nav.querySelectorAll('a')) {
    link.classList.toggle('current', link.dataset.view === (name === 'person' ? 'persons' : name));
  }
  const mine = ++generation;
  const root = el('div', { class: 'view' }, el('p', { class: 'muted' }, 'Loading…'));
  replace(view, root);
  try {
    if (name === 'person' && id) await personView(root, id);
    else if (VIEWS[name]) await VIEWS[name](root, params);
    else replace(root, el('h1', {}, 'Not found'), el('p', {}, 'There is no such page in the console. ', el('a', { href: '#persons' }, 'Go to the persons.')));
  } catch (error) {
    if (mine === generation) replace(root, errorBox(error));
  }
}

function signedOut() {
  generation += 1;
  replace(view);
  nav.hidden = true;
  signOutButton.hidden = true;
  signInSection.hidden = false;
  document.getElementById('token').focus();
}

document.getElementById('sign-in-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const input = document.getElementById('token');
  const status = document.getElementById('sign-in-status');
  const pasted = input.value.trim().replace(/^Bearer\s+/i, '');
  if (!pasted) {
    replace(status, errorBox(new Error('Paste a token first.')));
    return;
  }
  setToken(pasted);
  replace(status, el('div', { class: 'progress' }, el('progress'), ' Checking the token…'));
  try {
    // Any authenticated call tells whether the server takes the token.
    await api('GET', '/collections');
  } catch (error) {
    clearToken();
    replace(status, errorBox(error));
    return;
  }
  input.value = '';
  replace(status);
  notify('');
  show();
});

signOutButton.addEventListener('click', () => {
  clearToken();
  notify('Signed out: the token is forgotten by this tab.');
  signedOut();
});

nav.addEventListener('click', (event) => {
  if (!(event.target instanceof HTMLAnchorElement)) return;
  notify('');
  // The view shown, chosen again: start it afresh (the address does not change, so no
  // hashchange comes).
  if (event.target.getAttribute('href') === location.hash) show();
});

window.addEventListener('hashchange', show);
show();
