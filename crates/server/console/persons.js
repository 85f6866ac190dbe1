// Persons: the paginated list (filter by collection and status), a person's page, erasure
// and detachment, each behind a confirmation that says what goes.

import { api, listCollections, query } from './api.js';
import { confirmAction, el, errorBox, formatDate, navigate, notify, replace, thumbnail, withProgress } from './dom.js';

const PAGE_SIZES = [10, 25, 50, 100];
const STATUSES = ['active', 'inactive', 'pending'];

function collectionNames(person) {
  return (person.collections || []).map((c) => (typeof c === 'string' ? c : c.name));
}

function faceCount(person) {
  return Array.isArray(person.thumbnails) ? person.thumbnails.length : 0;
}

// Erases a person after confirmation; resolves true when erased.
async function erase(person, status) {
  const faces = faceCount(person);
  const confirmed = await confirmAction({
    title: `Erase ${person.name}?`,
    message: `${person.name}'s record, ${faces} enrolled face${faces === 1 ? '' : 's'} and ${faces === 1 ? 'its thumbnail' : 'their thumbnails'} are erased from the server, bytes included, and ${person.name} is removed from every collection and from search at once.`,
    detail: 'This cannot be undone: to find this person again, enrol them again.',
    confirmLabel: 'Erase',
  });
  if (!confirmed) return false;
  const answer = await withProgress(status, null, `Erasing ${person.name}…`, () =>
    api('DELETE', `/persons/${encodeURIComponent(person._id)}`));
  if (!answer) return false;
  notify(`${person.name} was erased.`);
  return true;
}

export async function personsView(root, params) {
  const state = {
    collection: params.get('collection') || '',
    status: params.get('status') || '',
    page: Math.max(1, Number.parseInt(params.get('page') || '1', 10) || 1),
    limit: PAGE_SIZES.includes(Number(params.get('limit'))) ? Number(params.get('limit')) : 10,
  };
  const go = (changes) => {
    const next = { ...state, ...changes };
    navigate(`#persons${query({ collection: next.collection, status: next.status, page: next.page > 1 ? next.page : '', limit: next.limit !== 10 ? next.limit : '' })}`);
  };

  let collections = [];
  const list = el('div', { class: 'card' }, el('p', { class: 'muted' }, 'Loading…'));
  const collectionSelect = el('select', { id: 'filter-collection', testid: 'filter-collection', onchange: (e) => go({ collection: e.target.value, page: 1 }) },
    el('option', { value: '' }, 'All collections'));
  const statusSelect = el('select', { id: 'filter-status', onchange: (e) => go({ status: e.target.value, page: 1 }) },
    el('option', { value: '' }, 'Any status'),
    STATUSES.map((s) => el('option', { value: s, selected: s === state.status }, s)));
  const sizeSelect = el('select', { id: 'filter-limit', onchange: (e) => go({ limit: Number(e.target.value), page: 1 }) },
    PAGE_SIZES.map((n) => el('option', { value: n, selected: n === state.limit }, `${n} a page`)));
  replace(root,
    el('div', { class: 'heading' }, el('h1', {}, 'Persons'), el('a', { class: 'button', href: '#enrol' }, 'Enrol a person')),
    el('div', { class: 'filters' },
      el('label', { for: 'filter-collection' }, 'Collection'), collectionSelect,
      el('label', { for: 'filter-status' }, 'Status'), statusSelect,
      el('label', { for: 'filter-limit' }, 'Show'), sizeSelect),
    list);

  try {
    collections = await listCollections();
  } catch (error) {
    replace(list, errorBox(error));
    return;
  }
  for (const c of collections) {
    collectionSelect.appendChild(el('option', { value: c._id, selected: c._id === state.collection }, c.name));
  }

  let answer;
  try {
    answer = await api('GET', `/persons${query({ page: state.page, limit: state.limit, collection: state.collection, status: state.status, 'populates[]': 'collections' })}`);
  } catch (error) {
    replace(list, errorBox(error));
    return;
  }
  const persons = Array.isArray(answer.data) ? answer.data : [];
  const pagination = answer.pagination || { page: state.page, pages: 1, total: persons.length };
  if (persons.length === 0) {
    replace(list, el('p', { class: 'muted', testid: 'no-persons' },
      pagination.total > 0 ? 'No persons on this page.' : 'Nobody is enrolled here yet.'));
  } else {
    replace(list,
      el('table', { class: 'table persons' },
        el('thead', {}, el('tr', {}, ['', 'Name', 'Collections', 'Status', 'Enrolled', ''].map((h) => el('th', {}, h)))),
        el('tbody', {}, persons.map((p) => personRow(p, () => go({}))))),
      pager(pagination, go));
  }
}

function personRow(person, refresh) {
  const status = el('div', { class: 'status', role: 'status' });
  const link = `#person/${encodeURIComponent(person._id)}`;
  return el('tr', { testid: 'person-row' },
    el('td', {}, el('a', { href: link }, thumbnail(person))),
    el('td', {}, el('a', { href: link, class: 'name', testid: 'person-name' }, person.name)),
    el('td', {}, collectionNames(person).map((n) => el('span', { class: 'tag' }, n))),
    el('td', {}, el('span', { class: `badge ${person.status}` }, person.status)),
    el('td', {}, formatDate(person.createdAt)),
    el('td', { class: 'row-actions' },
      el('a', { class: 'button secondary', href: link }, 'Open'),
      el('button', { type: 'button', class: 'danger', testid: 'delete-person', onclick: async () => {
        if (await erase(person, status)) refresh();
      } }, 'Delete'),
      status));
}

function pager(pagination, go) {
  const page = pagination.page || 1;
  const pages = Math.max(1, pagination.pages || 1);
  return el('div', { class: 'pager' },
    el('button', { type: 'button', class: 'secondary', disabled: page <= 1, onclick: () => go({ page: page - 1 }) }, '← Previous'),
    el('span', { testid: 'pager' }, `Page ${page} of ${pages} · ${pagination.total} person${pagination.total === 1 ? '' : 's'}`),
    el('button', { type: 'button', class: 'secondary', disabled: page >= pages, onclick: () => go({ page: page + 1 }) }, 'Next →'));
}

export async function personView(root, id) {
  let person;
  let collections;
  try {
    [person, collections] = await Promise.all([
      api('GET', `/persons/${encodeURIComponent(id)}`).then((a) => a.data),
      listCollections(),
    ]);
  } catch (error) {
    replace(root, el('h1', {}, 'Person'), errorBox(error), el('p', {}, el('a', { href: '#persons' }, 'Back to the persons')));
    return;
  }
  const status = el('div', { class: 'status', role: 'status' });
  const byId = new Map(collections.map((c) => [c._id, c]));
  const memberships = (person.collections || []).map((cid) => byId.get(cid) || { _id: cid, name: cid });
  const fields = [
    ['Status', person.status],
    ['Gender', person.gender],
    ['Date of birth', person.date_of_birth],
    ['Nationality', person.nationality],
    ['Notes', person.notes],
    ['Enrolled', formatDate(person.createdAt)],
    ['Updated', formatDate(person.updatedAt)],
    ['Id', person._id],
  ].filter(([, v]) => v);

  replace(root,
    el('p', {}, el('a', { href: '#persons' }, '← Persons')),
    el('div', { class: 'heading' }, el('h1', { testid: 'person-title' }, person.name),
      el('button', { type: 'button', class: 'danger', testid: 'delete-person', onclick: async () => {
        if (await erase(person, status)) navigate('#persons');
      } }, 'Delete (erase)')),
    status,
    el('div', { class: 'card' },
      el('h2', {}, 'Enrolled faces'),
      el('div', { class: 'faces' }, (person.thumbnails || []).map((t, i) =>
        el('img', { class: 'face', alt: `Enrolled face ${i + 1}`, src: `data:image/jpeg;base64,${t.thumbnail}` })))),
    el('div', { class: 'card' },
      el('h2', {}, 'Details'),
      el('dl', { class: 'fields' }, fields.map(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]))),
    el('div', { class: 'card' },
      el('h2', {}, 'Collections'),
      memberships.length === 0
        ? el('p', { class: 'muted' }, 'In no collection: found only by searches of all collections.')
        : el('ul', { class: 'memberships' }, memberships.map((c) => el('li', {},
          el('span', { class: 'tag' }, c.name), ' ',
          el('button', { type: 'button', class: 'secondary', testid: 'detach-person', onclick: () => detach(person, c, memberships.length, status) }, 'Detach'))))));
}

async function detach(person, collection, count, status) {
  const last = count === 1;
  const confirmed = await confirmAction({
    title: `Detach ${person.name} from "${collection.name}"?`,
    message: last
      ? `"${collection.name}" is ${person.name}'s only collection: detaching from it erases ${person.name}, with every enrolled face and thumbnail, bytes included.`
      : `${person.name} leaves "${collection.name}" and is no longer found by searches of it; the person stays enrolled in the other collections.`,
    detail: last ? 'This cannot be undone.' : '',
    confirmLabel: last ? 'Detach and erase' : 'Detach',
  });
  if (!confirmed) return;
  const answer = await withProgress(status, null, 'Detaching…', () =>
    api('DELETE', `/persons/${encodeURIComponent(person._id)}${query({ collection: collection._id })}`));
  if (!answer) return;
  if (answer.data && answer.data.deleted) {
    notify(`${person.name} was detached from "${collection.name}" and, having no other collection, erased.`);
    navigate('#persons');
  } else {
    notify(`${person.name} was detached from "${collection.name}".`);
    navigate(location.hash);
  }
}
