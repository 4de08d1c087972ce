// The HTTP API: every call carries the signed-in token as a bearer header (never a cookie),
// so no other site can make the browser send an authenticated request (CSRF-safe).
const KEY = 'csms.session';

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message || `HTTP ${status}`);
    this.status = status; this.code = code; this.details = details;
  }
}

export function session() {
  try { return JSON.parse(sessionStorage.getItem(KEY) || 'null'); } catch { return null; }
}
export function saveSession(value) { sessionStorage.setItem(KEY, JSON.stringify(value)); }
export function clearSession() { sessionStorage.removeItem(KEY); }

let unauthorized = () => {};
export function onUnauthorized(fn) { unauthorized = fn; }

function buildUrl(path, query) {
  const url = new URL('/api/v1' + path, location.origin);
  if (query) {
    for (const [k, v] of Object.entries(query)) {
      if (v === undefined || v === null || v === '') continue;
      if (Array.isArray(v)) v.forEach((x) => url.searchParams.append(k, x));
      else url.searchParams.set(k, String(v));
    }
  }
  return url;
}

/** fetch with the bearer token; JSON in and out; throws ApiError with the API's error shape. */
export async function api(path, {method = 'GET', body, query, signal, raw = false, token} = {}) {
  const bearer = token || session()?.token;
  const headers = {Accept: raw ? '*/*' : 'application/json'};
  if (bearer) headers.Authorization = 'Bearer ' + bearer;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(buildUrl(path, query), {
    method, headers, signal, cache: 'no-store', credentials: 'omit',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) {
    let err = {};
    try { err = (await response.json()).error || {}; } catch { /* not JSON */ }
    const e = new ApiError(response.status, err.code, err.message || response.statusText, err.details);
    if (response.status === 401 && !token) unauthorized(e);
    throw e;
  }
  if (raw) return response;
  return response.status === 204 ? null : response.json();
}

function filenameOf(response, fallback) {
  const cd = response.headers.get('Content-Disposition') || '';
  const star = /filename\*=UTF-8''([^;]+)/i.exec(cd);
  if (star) { try { return decodeURIComponent(star[1]); } catch { /* fall through */ } }
  const plain = /filename="?([^";]+)"?/i.exec(cd);
  return plain ? plain[1] : fallback;
}

/** Download an API file (report, CSV export) with the bearer token: fetch → blob → save. */
export async function download(path, query, fallback = 'download') {
  const response = await api(path, {query, raw: true});
  const blob = await response.blob();
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = filenameOf(response, fallback);
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60000);
  return a.download;
}

/**
 * Server-sent events from /api/v1/events, read with fetch (EventSource cannot send an
 * Authorization header). Reconnects with backoff; handlers get (kind, data); kind 'open' is
 * sent on every (re)connection so that pages can reload what they may have missed.
 */
export class LiveEvents {
  constructor() {
    this.handlers = new Set();
    this.stateHandlers = new Set();
    this.state = 'idle';
    this.controller = null;
  }
  on(fn) { this.handlers.add(fn); return () => this.handlers.delete(fn); }
  onState(fn) { this.stateHandlers.add(fn); fn(this.state); return () => this.stateHandlers.delete(fn); }
  setState(state) { this.state = state; this.stateHandlers.forEach((fn) => fn(state)); }
  start() {
    if (this.controller) return;
    this.controller = new AbortController();
    this.loop(this.controller.signal);
  }
  stop() {
    if (this.controller) this.controller.abort();
    this.controller = null;
    this.setState('idle');
  }
  async loop(signal) {
    let delay = 1000;
    while (!signal.aborted) {
      this.setState(this.state === 'idle' ? 'connecting' : 'retry');
      try {
        const response = await fetch('/api/v1/events', {
          headers: {Authorization: 'Bearer ' + (session()?.token || ''), Accept: 'text/event-stream'},
          signal, cache: 'no-store', credentials: 'omit',
        });
        if (response.status === 401) { unauthorized(new ApiError(401)); return; }
        if (!response.ok || !response.body) throw new Error('HTTP ' + response.status);
        this.setState('live');
        delay = 1000;
        this.emit('open', {});
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const {value, done} = await reader.read();
          if (done) break;
          buffer += value.replace(/\r\n/g, '\n');
          let i;
          while ((i = buffer.indexOf('\n\n')) >= 0) {
            this.dispatch(buffer.slice(0, i));
            buffer = buffer.slice(i + 2);
          }
        }
      } catch (e) {
        if (signal.aborted) return;
      }
      if (signal.aborted) return;
      this.setState('retry');
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 15000);
    }
  }
  dispatch(block) {
    let kind = 'message';
    const data = [];
    for (const line of block.split('\n')) {
      if (!line || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') kind = value;
      else if (field === 'data') data.push(value);
    }
    if (!data.length) return;
    let obj;
    try { obj = JSON.parse(data.join('\n')); } catch { return; }
    this.emit(kind, obj);
  }
  emit(kind, obj) {
    for (const fn of this.handlers) {
      try { fn(kind, obj); } catch (e) { console.error(e); }
    }
  }
}
