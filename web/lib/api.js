// The REST client: JSON in and out, the CSRF header on state-changing requests, and the
// API's error shape turned into ApiError (code, params, message, per-field details);
// lib/errors.js phrases it for people.

let csrfToken = null;
let onUnauthorized = () => {};

export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || 'http_error';
    this.details = e.details || [];
    this.params = e.params || {};
  }
}

/** Remembers the CSRF token of the current session (from login or /api/auth/me). */
export function setCsrf(token) {
  csrfToken = token || null;
}

/** Called when a request answers 401 (the session ended). */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

export async function request(method, path, body, { quiet401 = false } = {}) {
  const headers = { Accept: 'application/json' };
  // A FormData body (uploads) sets its own multipart Content-Type.
  const form = body instanceof FormData;
  if (body !== undefined && !form) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  let resp;
  try {
    resp = await fetch(path, {
      method,
      headers,
      body: body === undefined || form ? body : JSON.stringify(body),
      credentials: 'same-origin',
    });
  } catch (e) {
    throw new ApiError(0, { error: { code: 'network', message: e.message } });
  }
  const text = await resp.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!resp.ok) {
    if (resp.status === 401 && !quiet401) onUnauthorized();
    throw new ApiError(resp.status, data);
  }
  return data;
}

export const api = {
  get: (path, opts) => request('GET', path, undefined, opts),
  post: (path, body = undefined, opts) => request('POST', path, body, opts),
  put: (path, body, opts) => request('PUT', path, body, opts),
  del: (path, opts) => request('DELETE', path, undefined, opts),
  /** Posts a multipart form (file uploads). */
  upload: (path, form, opts) => request('POST', path, form, opts),
};

/** Encodes one path segment (program and user names are restricted, but be safe). */
export const seg = encodeURIComponent;
