// Checks that store nothing: compare two photos (1:1), and the liveness of a photo.

import { api } from './api.js';
import { el, errorBox, replace, withProgress } from './dom.js';
import { photoPicker } from './picker.js';

function verdict(passed, yes, no) {
  return el('span', { class: `badge ${passed ? 'active' : 'inactive'}` }, passed ? yes : no);
}

export function compareView(root) {
  const probe = photoPicker({ id: 'compare-probe', testid: 'compare-probe', label: 'First photo', max: 1 });
  const gallery = photoPicker({ id: 'compare-gallery', testid: 'compare-gallery', label: 'Second photo', max: 1 });
  const threshold = el('input', { id: 'compare-threshold', type: 'number', min: '0.2', max: '1', step: '0.01', value: '0.85' });
  const status = el('div', { class: 'status', role: 'status' });
  const result = el('div');
  const form = el('form', { class: 'card', autocomplete: 'off' },
    el('div', { class: 'grid' }, probe.element, gallery.element),
    el('div', { class: 'field' }, el('label', { for: 'compare-threshold' }, 'Threshold (compare_min_score)'), threshold),
    el('div', { class: 'actions' }, el('button', { type: 'submit', testid: 'compare-submit' }, 'Compare')),
    status);
  replace(root, el('h1', {}, 'Compare two photos'),
    el('p', { class: 'muted' }, 'Is it the same person? The largest face of each photo is compared; nothing is stored.'),
    form, result);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const [a, b] = [probe.photos()[0], gallery.photos()[0]];
    if (!a || !b) {
      replace(status, errorBox(new Error('Choose both photos.')));
      return;
    }
    replace(result);
    const answer = await withProgress(status, form, 'Comparing the faces…', () =>
      api('POST', '/compare', { probe: [a.dataUrl], gallery: [b.dataUrl], compare_min_score: Number(threshold.value) }));
    if (!answer) return;
    const d = answer.data;
    replace(result, el('div', { class: 'card', testid: 'compare-result' },
      el('div', { class: 'pair' }, el('img', { src: a.dataUrl, alt: 'First photo' }), el('img', { src: b.dataUrl, alt: 'Second photo' })),
      el('p', { class: 'summary' }, verdict(d.passed, 'Same person', 'Not the same person'),
        ` score ${Number(d.score).toFixed(2)}, threshold ${d.compare_min_score}`),
      el('p', { class: 'muted' }, 'For one comparison, thresholds from 0.70 up are reasonable; the default 0.85 is strict because the scale is shared with search.')));
  });
}

export function livenessView(root) {
  const photo = photoPicker({ id: 'liveness-file', testid: 'liveness-file', label: 'Photo of a face', max: 1 });
  const os = el('select', { id: 'liveness-os' }, ['DESKTOP', 'IOS', 'ANDROID'].map((o) => el('option', { value: o }, o)));
  const status = el('div', { class: 'status', role: 'status' });
  const result = el('div');
  const form = el('form', { class: 'card', autocomplete: 'off' },
    photo.element,
    el('div', { class: 'field' }, el('label', { for: 'liveness-os' }, 'Taken on'), os),
    el('div', { class: 'actions' }, el('button', { type: 'submit', testid: 'liveness-submit' }, 'Check liveness')),
    status);
  replace(root, el('h1', {}, 'Liveness of a photo'),
    el('p', { class: 'muted' }, 'Is the largest face a live person in front of the camera, or a print or a screen? Nothing is stored.'),
    form, result);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const chosen = photo.photos()[0];
    if (!chosen) {
      replace(status, errorBox(new Error('Choose a photo.')));
      return;
    }
    replace(result);
    const answer = await withProgress(status, form, 'Checking liveness…', () =>
      api('POST', '/liveness', { os: os.value, image: chosen.dataUrl }));
    if (!answer) return;
    const d = answer.data;
    replace(result, el('div', { class: 'card', testid: 'liveness-result' },
      el('img', { class: 'single', src: chosen.dataUrl, alt: 'The photo checked' }),
      el('p', { class: 'summary' }, verdict(d.passed, 'Live', 'Not live (print or replay suspected)'),
        ` liveness score ${Number(d.liveness_score).toFixed(4)}, threshold ${d.min_score}`)));
  });
}
