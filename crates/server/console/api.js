// The one way the console talks to the server: the public API under /v2/face-recognition,
// with the pasted token. The token lives in sessionStorage (this tab only, gone when the
// tab closes), never in localStorage or a cookie.

const TOKEN_KEY = 'visage.console.token';
const BASE = '/v2/face-recognition';

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  sessionStorage.setItem(TOKEN_KEY, value);
}

export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

// A refused call: `message` is in words for people; `status` and `body` are what the
// server said, for the details box.
export class ApiError extends Error {
  constructor(status, body, words) {
    super(words);
    this.status = status;
    this.body = body;
  }
}

// What each error of the API's table means for someone at the console.
const WORDS = {
  'Authentication required': 'The server refused this token (malformed or not signed by this server). Sign out and sign in with a valid token.',
  token_expired: 'This token has expired or was revoked. Sign out and sign in with a new one.',
  'Invalid or expired token.': 'This token has expired or was revoked. Sign out and sign in with a new one.',
  PERSON_NOT_FOUND: 'This person does not exist (it may have been erased already).',
  invalid_collection: 'This collection does not exist (it may have been deleted).',
  'Invalid query parameters': 'The list filters are not valid.',
  duplicated_person: 'Someone in this collection already matches this face.',
  liveness_failed: 'The photo did not pass the liveness check.',
  face_too_small: 'The face is too small to judge liveness (under 40 pixels wide). Use a closer photo.',
  person_already_set: 'A person with the same name and date of birth is already in that collection.',
  only_images_in_base64: 'The photo could not be read as an image.',
  invalid_image: 'The file is not a JPEG, PNG, WebP or BMP image, it is damaged, or its shape cannot hold a face.',
  image_too_large: 'The image is too large (over 40 megapixels or 12,000 pixels a side). Use a smaller one.',
  no_face_detected: 'No face was found in the photo.',
  image_urls_disabled: 'Images must be uploaded; the server never fetches URLs.',
  method_not_allowed: 'The server does not allow this action here.',
  route_not_found: 'The server does not know this address. Is it a visage server of the same version?',
  request_timeout: 'The upload took too long and the server gave up. Try a smaller photo or a faster network.',
  payload_too_large: "The photos are larger than this server's upload limit. Use smaller ones.",
  uri_too_long: 'The request address is too long.',
  too_many_requests: 'Too many requests from this token right now. Wait a moment and try again.',
  headers_too_large: 'The request headers are too large (is the token pasted twice?).',
  liveness_not_available: 'Liveness is not available: the liveness models are not installed on this server.',
  server_busy: 'The server is busy. Try again in a moment.',
  internal_error: 'The server failed unexpectedly; its log says why.',
  bad_request: 'The server could not read the request.',
};

function inWords(status, body) {
  const raw = body && typeof body.message === 'string' ? body.message : '';
  // Some messages carry their status in front ("409:duplicated_person").
  const message = raw.replace(/^\d{3}:/, '');
  if (WORDS[message]) return WORDS[message];
  if (body && body.code === 'MissingParameter') return `The server refused the form: ${message}.`;
  if (message) return `The server refused the request (${status}): ${message}.`;
  return `The server answered with status ${status}.`;
}

// One API call; resolves to the parsed envelope, or throws an ApiError in words.
export async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${token() || ''}` };
  const init = { method, headers, cache: 'no-store', credentials: 'omit', redirect: 'error' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(BASE + path, init);
  } catch (_) {
    throw new ApiError(0, null, 'The server could not be reached. Is it running, and is the network up?');
  }
  let parsed = null;
  try {
    parsed = await response.json();
  } catch (_) {
    parsed = null;
  }
  if (!response.ok) throw new ApiError(response.status, parsed, inWords(response.status, parsed));
  if (parsed === null) throw new ApiError(response.status, null, 'The server answered with something that is not JSON.');
  return parsed;
}

// A query string from an object, leaving out empty values.
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === '') continue;
    search.append(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

// Every collection of this client (the API answers them all at once).
export async function listCollections() {
  const answer = await api('GET', '/collections');
  return Array.isArray(answer.data) ? answer.data : [];
}
