// Collections: list, create, rename, delete.

import { api, listCollections } from './api.js';
import { confirmAction, el, errorBox, formatDate, notify, replace, withProgress } from './dom.js';

export async function collectionsView(root) {
  const status = el('div', { class: 'status', role: 'status' });
  const name = el('input', { id: 'collection-name', testid: 'collection-name', required: true, maxlength: 200 });
  const description = el('input', { id: 'collection-description', testid: 'collection-description', maxlength: 1000 });
  const form = el('form', { class: 'card', autocomplete: 'off' },
    el('h2', {}, 'New collection'),
    el('div', { class: 'grid' },
      el('div', { class: 'field' }, el('label', { for: 'collection-name' }, 'Name'), name),
      el('div', { class: 'field' }, el('label', { for: 'collection-description' }, 'Description (optional)'), description)),
    el('div', { class: 'actions' }, el('button', { type: 'submit', testid: 'collection-create' }, 'Create collection')),
    status);
  const list = el('div', { class: 'card' });
  replace(root, el('h1', {}, 'Collections'), form, list);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!name.value.trim()) {
      replace(status, errorBox(new Error('A collection needs a name.')));
      return;
    }
    const created = await withProgress(status, form, 'Creating the collection…', () =>
      api('POST', '/collections', { name: name.value.trim(), description: description.value.trim() || undefined }));
    if (created) {
      notify(`Collection "${created.data.name}" created.`);
      name.value = '';
      description.value = '';
      await renderList(list);
    }
  });
  await renderList(list);
}

async function renderList(list) {
  let collections;
  try {
    collections = await listCollections();
  } catch (error) {
    replace(list, errorBox(error));
    return;
  }
  if (collections.length === 0) {
    replace(list, el('p', { class: 'muted' }, 'No collection yet. Persons can be enrolled without one, but collections let a search look at a smaller gallery.'));
    return;
  }
  const rows = collections.map((c) => collectionRow(c, () => renderList(list)));
  replace(list, el('table', { class: 'table' },
    el('thead', {}, el('tr', {}, ['Name', 'Description', 'Id and code', 'Created', ''].map((h) => el('th', {}, h)))),
    el('tbody', {}, rows)));
}

function collectionRow(collection, refresh) {
  const status = el('div', { class: 'status', role: 'status' });
  const nameCell = el('td', {}, el('strong', {}, collection.name));
  const row = el('tr', { testid: 'collection-row' },
    nameCell,
    el('td', {}, collection.description || ''),
    el('td', { class: 'ids' }, el('code', {}, collection._id), el('br'), el('code', { class: 'muted' }, collection.code)),
    el('td', {}, formatDate(collection.createdAt)),
    el('td', { class: 'row-actions' },
      el('a', { class: 'button secondary', href: `#persons?collection=${encodeURIComponent(collection._id)}` }, 'Persons'),
      el('button', { type: 'button', class: 'secondary', testid: 'rename-collection', onclick: () => rename() }, 'Rename'),
      el('button', { type: 'button', class: 'danger', testid: 'delete-collection', onclick: () => remove() }, 'Delete'),
      status));

  function rename() {
    const input = el('input', { value: collection.name, 'aria-label': 'New name', testid: 'rename-input', maxlength: 200 });
    const form = el('form', { class: 'inline' }, input,
      el('button', { type: 'submit', testid: 'rename-save' }, 'Save'),
      el('button', { type: 'button', class: 'secondary', onclick: () => replace(nameCell, el('strong', {}, collection.name)) }, 'Cancel'));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const updated = await withProgress(status, form, 'Renaming…', () =>
        api('PUT', `/collections/${encodeURIComponent(collection._id)}`, { name: input.value.trim() }));
      if (updated) {
        notify(`Collection renamed to "${updated.data.name}".`);
        await refresh();
      }
    });
    replace(nameCell, form);
    input.focus();
  }

  async function remove() {
    const confirmed = await confirmAction({
      title: `Delete the collection "${collection.name}"?`,
      message: 'The collection is deleted. Its persons are detached from it, not erased: they stay enrolled, in their other collections if they have any, and can still be found by a search of all collections.',
      detail: 'To erase persons, delete them from the persons list.',
      confirmLabel: 'Delete collection',
    });
    if (!confirmed) return;
    const deleted = await withProgress(status, null, 'Deleting…', () =>
      api('DELETE', `/collections/${encodeURIComponent(collection._id)}`));
    if (deleted) {
      notify(`Collection "${collection.name}" deleted.`);
      await refresh();
    }
  }

  return row;
}
