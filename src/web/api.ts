// The one way the UI talks to the gateway: JSON in and out, the CSRF header on every write, and
// errors turned into ApiError (with the per-field messages the server sends for forms).

export interface FieldMessage {
  field: string;
  message: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** Per-field problems (form validation); empty for other errors. */
    readonly errors: FieldMessage[] = [],
    /** The field the error is mainly about, when the server names one. */
    readonly field?: string,
    /** Seconds to wait, from Retry-After (rate limits). */
    readonly retryAfter?: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

let csrfToken: string | null = null;
let onUnauthorized: (() => void) | null = null;

export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

/** The CSRF header for writes sent without api() (uploads with XMLHttpRequest, for their progress). */
export function csrfHeaders(): Record<string, string> {
  return csrfToken ? { 'x-csrf-token': csrfToken } : {};
}

/** Called when a request other than sign-in answers 401 (the browser session has ended). */
export function setUnauthorizedHandler(f: (() => void) | null): void {
  onUnauthorized = f;
}

const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

interface ErrorBody {
  error?: unknown;
  errors?: unknown;
  field?: unknown;
}

function toFieldMessages(v: unknown): FieldMessage[] {
  if (!Array.isArray(v)) return [];
  return v
    .filter((e): e is FieldMessage => typeof e?.field === 'string' && typeof e?.message === 'string')
    .map((e) => ({ field: e.field, message: e.message }));
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (WRITES.has(method) && csrfToken) headers['x-csrf-token'] = csrfToken;
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, 'The gateway cannot be reached; check your connection and try again.');
  }
  const text = await res.text();
  let parsed: unknown = null;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = null;
    }
  }
  if (!res.ok) {
    const b = (parsed ?? {}) as ErrorBody;
    const message = typeof b.error === 'string' && b.error ? b.error : `request failed (HTTP ${res.status})`;
    const retry = Number(res.headers.get('retry-after'));
    if (res.status === 401 && path !== '/api/login' && path !== '/api/me') onUnauthorized?.();
    throw new ApiError(
      res.status,
      message,
      toFieldMessages(b.errors),
      typeof b.field === 'string' ? b.field : undefined,
      Number.isFinite(retry) && retry > 0 ? retry : undefined,
    );
  }
  return parsed as T;
}

export const get = <T>(path: string) => api<T>('GET', path);
export const post = <T>(path: string, body: unknown = {}) => api<T>('POST', path, body);
export const patch = <T>(path: string, body: unknown) => api<T>('PATCH', path, body);
export const del = <T>(path: string) => api<T>('DELETE', path);

/** Capitalises a server message for display ("wrong user name..." → "Wrong user name..."). */
export function sentence(message: string): string {
  const m = message.trim();
  if (!m) return m;
  const s = m.charAt(0).toUpperCase() + m.slice(1);
  return /[.!?]$/.test(s) ? s : `${s}.`;
}

/** What went wrong, as a sentence for the page (an ApiError carries the server's message). */
export function errorText(e: unknown): string {
  return sentence(e instanceof Error ? e.message : String(e));
}
