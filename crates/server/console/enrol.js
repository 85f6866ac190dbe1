// Enrolment: a name, optional fields and collections, and 1-3 photos of one person.

import { api, listCollections } from './api.js';
import { el, errorBox, notify, replace, withProgress } from './dom.js';
import { photoPicker } from './picker.js';

const MAX_PHOTOS = 3;

function field(id, label, input, note) {
  return el('div', { class: 'field' }, el('label', { for: id }, label), input, note ? el('div', { class: 'field-note' }, note) : null);
}

export async function enrolView(root) {
  let collections = [];
  try {
    collections = await listCollections();
  } catch (error) {
    replace(root, el('h1', {}, 'Enrol a person'), errorBox(error));
    return;
  }
  const name = el('input', { id: 'enrol-name', testid: 'enrol-name', required: true, maxlength: 200, autocomplete: 'off' });
  const gender = el('select', { id: 'enrol-gender', testid: 'enrol-gender' },
    el('option', { value: '' }, 'not given'), el('option', { value: 'M' }, 'M'), el('option', { value: 'F' }, 'F'));
  const birth = el('input', { id: 'enrol-birth', testid: 'enrol-birth', type: 'date' });
  const nationality = el('input', { id: 'enrol-nationality', maxlength: 100, autocomplete: 'off' });
  const notes = el('textarea', { id: 'enrol-notes', rows: 2, maxlength: 2000 });
  const boxes = collections.map((c) => el('input', { type: 'checkbox', value: c._id, id: `enrol-collection-${c._id}`, testid: 'enrol-collection' }));
  const picker = photoPicker({ id: 'enrol-file', testid: 'enrol-file', label: `Photos of the person (1 to ${MAX_PHOTOS}; the largest face of each is enrolled)`, max: MAX_PHOTOS });
  const status = el('div', { class: 'status', role: 'status', testid: 'enrol-status' });
  const form = el('form', { class: 'card', autocomplete: 'off' },
    el('div', { class: 'grid' },
      field('enrol-name', 'Name', name, 'Digits are removed from names, as Verifik does.'),
      field('enrol-gender', 'Gender (optional)', gender),
      field('enrol-birth', 'Date of birth (optional)', birth, 'With the name, it tells two persons apart in a collection.'),
      field('enrol-nationality', 'Nationality (optional)', nationality)),
    field('enrol-notes', 'Notes (optional)', notes),
    el('fieldset', { class: 'collections' },
      el('legend', {}, 'Collections'),
      collections.length === 0
        ? el('p', { class: 'muted' }, 'No collection yet (create one under Collections); the person can be enrolled without.')
        : collections.map((c, i) => el('label', { class: 'check', for: boxes[i].id }, boxes[i], ' ', c.name))),
    picker.element,
    el('div', { class: 'actions' }, el('button', { type: 'submit', testid: 'enrol-submit' }, 'Enrol')),
    status);
  replace(root, el('h1', {}, 'Enrol a person'), form);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const photos = picker.photos();
    const problem = !name.value.trim() ? 'Give the person a name.'
      : photos.length === 0 ? 'Choose at least one photo of the person.' : null;
    if (problem) {
      replace(status, errorBox(new Error(problem)));
      return;
    }
    const body = {
      name: name.value.trim(),
      images: photos.map((p) => p.dataUrl),
      collections: boxes.filter((b) => b.checked).map((b) => b.value),
      gender: gender.value || undefined,
      date_of_birth: birth.value || undefined,
      nationality: nationality.value.trim() || undefined,
      notes: notes.value.trim() || undefined,
    };
    const created = await withProgress(status, form,
      `Uploading ${photos.length} photo${photos.length === 1 ? '' : 's'}; the server finds, aligns and embeds each face…`,
      () => api('POST', '/persons', body));
    if (!created) return;
    const person = created.data;
    form.reset();
    picker.reset();
    notify('');
    replace(status, el('div', { class: 'success', testid: 'enrol-done' },
      `${person.name} is enrolled with ${person.thumbnails.length} face${person.thumbnails.length === 1 ? '' : 's'}. `,
      el('a', { href: `#person/${encodeURIComponent(person._id)}` }, 'Open their page'), '.'));
  });
}
