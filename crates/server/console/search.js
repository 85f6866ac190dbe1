// 1:N search by photo: every face of the photo boxed, each searched, its matches with their
// scores, the threshold used and how many enrolled faces were compared.

import { ApiError, api, listCollections } from './api.js';
import { el, errorBox, replace, thumbnail, withProgress } from './dom.js';
import { cropFace, drawFaces, loadImage } from './images.js';
import { photoPicker } from './picker.js';

// More faces than this in one photo are boxed but not searched (each is one search call).
const MAX_FACES_SEARCHED = 10;

function scoreExplanation() {
  return el('div', { class: 'card explain' },
    el('h2', {}, 'What the score means'),
    el('p', {}, 'A score is a calibrated similarity between 0 and 1: the same fixed map of the face model\'s cosine similarity everywhere in the API. Only persons scoring at or above the threshold (min_score) are answered.'),
    el('p', {}, 'At the default 0.81, none of the 1,500 impostor pairs of LFW passed, and about 89% of the genuine pairs did. In a search the risk is not one comparison but the whole gallery: a photo of someone who is not enrolled matches somebody with a probability that grows with the number of enrolled faces searched (faces_searched): about 0.1% at 1,000 faces, 10% at 100,000. The default keeps false matches rare up to about 10,000 faces.'),
    el('p', {}, 'Search smaller galleries with collections, use several photos, and treat a match as a lead for a person to confirm. The details are in docs/scores.md.'));
}

export async function searchView(root) {
  let collections = [];
  try {
    collections = await listCollections();
  } catch (error) {
    replace(root, el('h1', {}, 'Search'), errorBox(error));
    return;
  }
  const picker = photoPicker({ id: 'search-file', testid: 'search-file', label: 'Photo to search (every face in it is searched)', max: 1 });
  const collection = el('select', { id: 'search-collection', testid: 'search-collection' },
    el('option', { value: '' }, 'All collections'),
    collections.map((c) => el('option', { value: c._id }, c.name)));
  const minScore = el('input', { id: 'search-min-score', testid: 'search-min-score', type: 'number', min: '0.2', max: '1', step: '0.01', value: '0.81' });
  const mode = el('select', { id: 'search-mode' },
    el('option', { value: 'ACCURATE' }, 'ACCURATE (every face compared)'),
    el('option', { value: 'FAST' }, 'FAST (graph search on large galleries)'));
  const maxResults = el('input', { id: 'search-max', type: 'number', min: '1', max: '100', step: '1', value: '5' });
  const status = el('div', { class: 'status', role: 'status' });
  const results = el('div', { testid: 'search-results' });
  const form = el('form', { class: 'card', autocomplete: 'off' },
    picker.element,
    el('div', { class: 'grid' },
      el('div', { class: 'field' }, el('label', { for: 'search-collection' }, 'In'), collection),
      el('div', { class: 'field' }, el('label', { for: 'search-min-score' }, 'Threshold (min_score, 0.2-1)'), minScore),
      el('div', { class: 'field' }, el('label', { for: 'search-mode' }, 'Mode'), mode),
      el('div', { class: 'field' }, el('label', { for: 'search-max' }, 'Matches per face (1-100)'), maxResults)),
    el('div', { class: 'actions' }, el('button', { type: 'submit', testid: 'search-submit' }, 'Search')),
    status);
  replace(root, el('h1', {}, 'Search by photo'), form, results, scoreExplanation());

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const photo = picker.photos()[0];
    if (!photo) {
      replace(status, errorBox(new Error('Choose a photo to search with.')));
      return;
    }
    const params = {
      min_score: Number(minScore.value),
      search_mode: mode.value,
      collection_id: collection.value || undefined,
      max_results: Number.parseInt(maxResults.value, 10),
    };
    replace(results);
    const outcome = await withProgress(status, form, 'Uploading the photo and finding its faces…', (step) => run(photo, params, step));
    if (outcome) replace(results, render(outcome, params, collection.selectedOptions[0].textContent));
  });
}

async function run(photo, params, step) {
  const image = await loadImage(photo.dataUrl);
  const detected = await api('POST', '/detect', { image: photo.dataUrl });
  const faces = (detected.data.faces || []).map((f) => ({ box: f.bounding_box, confidence: f.confidence }));
  if (faces.length === 1) {
    // One face: the photo itself is the probe, exactly as a client of the API would send it.
    step('Searching the face…');
    faces[0].answer = await api('POST', '/search', { images: [photo.dataUrl], ...params });
  } else {
    const searched = faces.slice(0, MAX_FACES_SEARCHED);
    for (const [index, face] of searched.entries()) {
      step(`Searching face ${index + 1} of ${searched.length}…`);
      try {
        face.answer = await api('POST', '/search', { images: [cropFace(image, face.box)], ...params });
      } catch (error) {
        if (!(error instanceof ApiError) || error.status === 0 || error.status === 401 || error.status === 403) throw error;
        face.error = error;
      }
    }
  }
  return { image, faces };
}

function render({ image, faces }, params, scope) {
  if (faces.length === 0) {
    return el('div', { class: 'card' }, el('p', { testid: 'search-no-face' }, 'No face was found in this photo.'));
  }
  for (const face of faces) {
    const best = face.answer && face.answer.data[0];
    face.label = best ? `${best.name} ${best.score.toFixed(2)}` : face.answer ? 'no match' : '';
  }
  const answered = faces.find((f) => f.answer);
  const searchedCount = answered ? answered.answer.faces_searched : null;
  const summary = [
    `${faces.length} face${faces.length === 1 ? '' : 's'} found`,
    `threshold (min_score) ${params.min_score}`,
    answered ? `${answered.answer.search_mode}` : null,
    searchedCount !== null ? `${searchedCount} enrolled face${searchedCount === 1 ? '' : 's'} searched (${scope})` : null,
  ].filter(Boolean).join(' · ');
  return el('div', { class: 'card', testid: 'search-outcome' },
    el('h2', {}, 'Result'),
    el('p', { class: 'summary', testid: 'search-summary' }, summary),
    faces.length > MAX_FACES_SEARCHED
      ? el('p', { class: 'muted' }, `Only the first ${MAX_FACES_SEARCHED} faces (best detections first) were searched.`)
      : null,
    el('div', { class: 'search-layout' },
      el('div', { class: 'photo' }, drawFaces(image, faces)),
      el('ol', { class: 'face-list' }, faces.map((face, index) => faceResult(face, index, params)))));
}

function faceResult(face, index, params) {
  const colour = el('span', { class: `swatch swatch-${index % 6}` });
  let body;
  if (face.error) {
    body = el('p', { class: 'muted' }, `Not searched: ${face.error.message}`);
  } else if (!face.answer) {
    body = el('p', { class: 'muted' }, 'Not searched.');
  } else if (face.answer.data.length === 0) {
    body = el('p', { class: 'muted', testid: 'search-no-match' },
      `No enrolled person scores ${params.min_score} or more among the ${face.answer.faces_searched} faces searched.`);
  } else {
    body = el('ul', { class: 'matches' }, face.answer.data.map((m) => el('li', { testid: 'search-result' },
      thumbnail(m),
      el('a', { href: `#person/${encodeURIComponent(m.id)}`, class: 'name' }, m.name),
      el('span', { class: 'score', title: 'calibrated score, 0 to 1' }, `score ${m.score.toFixed(2)}`),
      el('meter', { min: '0', max: '1', low: String(params.min_score), optimum: '1', value: String(m.score) }))));
  }
  return el('li', { class: 'face-result' },
    el('h3', {}, colour, `Face ${index + 1}`, el('span', { class: 'muted' }, ` detection ${face.confidence.toFixed(2)}`)),
    body);
}
