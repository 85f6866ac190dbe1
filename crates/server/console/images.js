// Photos in the browser: files to data: URLs (which the API takes as they are), the camera,
// face crops, and a photo drawn with its faces boxed.

export function readAsDataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(new Error(`The file ${file.name} could not be read.`));
    reader.readAsDataURL(file);
  });
}

export async function loadImage(src) {
  const image = new Image();
  image.src = src;
  try {
    await image.decode();
  } catch (_) {
    throw new Error('This browser cannot display the photo (the server may still read it).');
  }
  return image;
}

// The face's box grown by `margin` of its size on every side (the detector needs some
// context around a face to find it again), clipped to the photo, as a JPEG data: URL.
export function cropFace(image, box, margin = 0.6) {
  const grow = Math.max(box.width, box.height) * margin;
  const left = Math.max(0, Math.floor(box.x - grow));
  const top = Math.max(0, Math.floor(box.y - grow));
  const right = Math.min(image.naturalWidth, Math.ceil(box.x + box.width + grow));
  const bottom = Math.min(image.naturalHeight, Math.ceil(box.y + box.height + grow));
  const canvas = document.createElement('canvas');
  canvas.width = Math.max(1, right - left);
  canvas.height = Math.max(1, bottom - top);
  canvas.getContext('2d').drawImage(image, left, top, canvas.width, canvas.height, 0, 0, canvas.width, canvas.height);
  return canvas.toDataURL('image/jpeg', 0.92);
}

const BOX_COLOURS = ['#e4572e', '#17bebb', '#ffc914', '#76b041', '#2e86ab', '#a23b72'];

// The same colours as the .swatch-N classes of console.css.
function boxColour(index) {
  return BOX_COLOURS[index % BOX_COLOURS.length];
}

// The photo on a canvas at most `maxWidth` wide, each face boxed in its colour with its
// number and label (`faces[i].label`).
export function drawFaces(image, faces, maxWidth = 900) {
  const scale = Math.min(1, maxWidth / image.naturalWidth);
  const canvas = document.createElement('canvas');
  canvas.width = Math.round(image.naturalWidth * scale);
  canvas.height = Math.round(image.naturalHeight * scale);
  const context = canvas.getContext('2d');
  context.drawImage(image, 0, 0, canvas.width, canvas.height);
  const line = Math.max(2, Math.round(canvas.width / 300));
  const fontSize = Math.max(12, Math.round(canvas.width / 45));
  context.font = `${fontSize}px system-ui, sans-serif`;
  context.textBaseline = 'top';
  faces.forEach((face, index) => {
    const box = face.box;
    const x = box.x * scale;
    const y = box.y * scale;
    context.lineWidth = line;
    context.strokeStyle = boxColour(index);
    context.strokeRect(x, y, box.width * scale, box.height * scale);
    const label = `${index + 1}${face.label ? `: ${face.label}` : ''}`;
    const width = context.measureText(label).width + 8;
    // Above the box when there is room, else below it; never past the right edge.
    const labelY = y - fontSize - 6 >= 0 ? y - fontSize - 6 : y + box.height * scale + 2;
    const labelX = Math.max(0, Math.min(x - line / 2, canvas.width - width));
    context.fillStyle = boxColour(index);
    context.fillRect(labelX, labelY, width, fontSize + 6);
    context.fillStyle = '#111';
    context.fillText(label, labelX + 4, labelY + 3);
  });
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', `The photo with ${faces.length} face(s) boxed`);
  return canvas;
}

export function cameraAvailable() {
  return Boolean(window.isSecureContext && navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
}

// Opens the camera dialog; resolves to a JPEG data: URL, or null when cancelled or denied.
export async function takePhoto() {
  const dialog = document.getElementById('camera');
  const video = document.getElementById('camera-video');
  const status = document.getElementById('camera-status');
  const capture = document.getElementById('camera-capture');
  status.textContent = 'Starting the camera…';
  capture.disabled = true;
  dialog.returnValue = '';
  dialog.showModal();
  let stream = null;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'user' }, audio: false });
    video.srcObject = stream;
    status.textContent = '';
    capture.disabled = false;
  } catch (error) {
    status.textContent = error && error.name === 'NotAllowedError'
      ? 'The browser was not allowed to use the camera.'
      : 'No camera could be opened.';
  }
  const choice = await new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue), { once: true });
  });
  let photo = null;
  if (choice === 'capture' && stream && video.videoWidth > 0) {
    const canvas = document.createElement('canvas');
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext('2d').drawImage(video, 0, 0);
    photo = canvas.toDataURL('image/jpeg', 0.92);
  }
  if (stream) stream.getTracks().forEach((track) => track.stop());
  video.srcObject = null;
  return photo;
}
