import type { ErrorBody, MediaPage, MediaPublic, ThumbnailSize, UserCreate, UserPublic } from './types'

/** A failed API call, carrying the server's `{"error": {code, message}}`. */
export class ApiError extends Error {
  readonly status: number
  readonly code: string

  constructor(status: number, code: string, message: string) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.code = code
  }
}

// The session cookie authenticates; unsafe requests must also carry this
// header, which a cross-site form cannot send (the backend's CSRF rule).
export const CSRF_HEADERS = { 'X-Requested-With': 'mosaic' } as const

let onUnauthorized: () => void = () => {}

/** Called on any 401, so the app can return to sign-in. */
export function setUnauthorizedHandler(handler: () => void): void {
  onUnauthorized = handler
}

export function notifyUnauthorized(): void {
  onUnauthorized()
}

function isErrorBody(value: unknown): value is ErrorBody {
  if (typeof value !== 'object' || value === null || !('error' in value)) return false
  const error = (value as { error: unknown }).error
  return (
    typeof error === 'object' &&
    error !== null &&
    typeof (error as { message?: unknown }).message === 'string' &&
    typeof (error as { code?: unknown }).code === 'string'
  )
}

/** Turn a response body into an ApiError, whatever the server sent. */
export function toApiError(status: number, body: unknown): ApiError {
  if (isErrorBody(body)) return new ApiError(status, body.error.code, body.error.message)
  return new ApiError(status, 'http_error', `The server answered ${status}`)
}

async function readJson(response: Response): Promise<unknown> {
  const text = await response.text()
  if (!text) return null
  try {
    return JSON.parse(text) as unknown
  } catch {
    return null
  }
}

export async function request<T>(path: string, init: RequestInit = {}): Promise<T> {
  const method = (init.method ?? 'GET').toUpperCase()
  const headers = new Headers(init.headers)
  if (method !== 'GET' && method !== 'HEAD') {
    for (const [name, value] of Object.entries(CSRF_HEADERS)) headers.set(name, value)
  }
  let response: Response
  try {
    response = await fetch(path, { ...init, method, headers, credentials: 'same-origin' })
  } catch {
    throw new ApiError(0, 'network_error', 'Cannot reach the server. Check your connection.')
  }
  if (response.status === 401 && path !== '/api/auth/token') notifyUnauthorized()
  if (!response.ok) throw toApiError(response.status, await readJson(response))
  if (response.status === 204) return undefined as T
  return (await readJson(response)) as T
}

export const api = {
  signIn(username: string, password: string): Promise<unknown> {
    const body = new URLSearchParams({ username, password })
    return request('/api/auth/token', { method: 'POST', body })
  },
  signOut(): Promise<void> {
    return request('/api/auth/logout', { method: 'POST' })
  },
  me(): Promise<UserPublic> {
    return request('/api/users/me')
  },
  createUser(user: UserCreate): Promise<UserPublic> {
    return request('/api/users', {
      method: 'POST',
      body: JSON.stringify(user),
      headers: { 'Content-Type': 'application/json' },
    })
  },
  listMedia(cursor: string | null, limit = 50): Promise<MediaPage> {
    const params = new URLSearchParams({ limit: String(limit) })
    if (cursor) params.set('cursor', cursor)
    return request(`/api/media?${params}`)
  },
  deleteMedia(id: string): Promise<void> {
    return request(`/api/media/${encodeURIComponent(id)}`, { method: 'DELETE' })
  },
}

/** The thumbnail URL of a preset; `thumbnail_url` already carries the version (`?v=`). */
export function thumbnailSrc(media: MediaPublic, size: ThumbnailSize): string {
  const separator = media.thumbnail_url.includes('?') ? '&' : '?'
  return `${media.thumbnail_url}${separator}size=${size}`
}

export function originalHref(media: MediaPublic): string {
  return `/api/media/${encodeURIComponent(media.id)}/original`
}
