// A photo field: choose 1..max files or take photos with the camera; shows what was chosen.

import { el, replace } from './dom.js';
import { cameraAvailable, readAsDataUrl, takePhoto } from './images.js';

// Returns { element, photos() -> [{name, dataUrl}], reset() }; `onChange` is called after
// each change.
export function photoPicker({ id, testid, label, max, onChange = () => {} }) {
  let photos = [];
  const input = el('input', { id, type: 'file', accept: 'image/*', testid, multiple: max > 1 });
  const previews = el('div', { class: 'previews' });
  const message = el('div', { class: 'field-note' });

  function render() {
    replace(previews, photos.map((photo, index) => el('figure', { class: 'preview' },
      el('img', { src: photo.dataUrl, alt: photo.name }),
      el('figcaption', {}, photo.name, ' ',
        el('button', { type: 'button', class: 'link', onclick: () => remove(index) }, 'remove')))));
    message.textContent = max > 1 ? `${photos.length} of at most ${max} photos` : '';
    onChange(photos);
  }

  function remove(index) {
    photos.splice(index, 1);
    render();
  }

  function add(items) {
    const room = max - (max > 1 ? photos.length : 0);
    if (max === 1) photos = [];
    photos.push(...items.slice(0, room));
    render();
    if (items.length > room) message.textContent = `Only ${max} photo(s) can be used; the rest were left out.`;
  }

  input.addEventListener('change', async () => {
    const files = Array.from(input.files || []);
    try {
      add(await Promise.all(files.map(async (file) => ({ name: file.name, dataUrl: await readAsDataUrl(file) }))));
    } catch (error) {
      message.textContent = error.message;
    }
    input.value = '';
  });

  const camera = cameraAvailable()
    ? el('button', { type: 'button', class: 'secondary', onclick: async () => {
      const photo = await takePhoto();
      if (photo) add([{ name: 'camera photo', dataUrl: photo }]);
    } }, 'Use the camera')
    : null;

  const element = el('div', { class: 'field' },
    el('label', { for: id }, label),
    el('div', { class: 'row' }, input, camera),
    message,
    previews);
  return {
    element,
    photos: () => photos.slice(),
    reset: () => { photos = []; render(); },
  };
}
