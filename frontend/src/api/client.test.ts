import { afterEach, describe, expect, it, vi } from 'vitest'
import { jsonResponse } from '../test/fixtures'
import { api, ApiError, request, setUnauthorizedHandler, thumbnailSrc } from './client'
import { makeMedia } from '../test/fixtures'

afterEach(() => {
  vi.unstubAllGlobals()
  setUnauthorizedHandler(() => {})
})

describe('request', () => {
  it('reads the error message from the API error body', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => jsonResponse({ error: { code: 'username_taken', message: "The username 'bo' is taken" } }, 409)))
    const error = await api.createUser({ username: 'bo', password: 'password1', is_admin: false }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ApiError)
    expect(error).toMatchObject({ status: 409, code: 'username_taken', message: "The username 'bo' is taken" })
  })

  it('falls back to a generic message when the body is not the error shape', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => new Response('<html>bad gateway</html>', { status: 502 })))
    await expect(request('/api/media')).rejects.toMatchObject({ status: 502, code: 'http_error', message: 'The server answered 502' })
  })

  it('reports a network failure', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => Promise.reject(new TypeError('Failed to fetch'))))
    await expect(request('/api/media')).rejects.toMatchObject({ code: 'network_error' })
  })

  it('returns to sign-in on any 401', async () => {
    const handler = vi.fn()
    setUnauthorizedHandler(handler)
    vi.stubGlobal('fetch', vi.fn(async () => jsonResponse({ error: { code: 'not_authenticated', message: 'Not signed in' } }, 401)))
    await expect(api.listMedia(null)).rejects.toMatchObject({ status: 401 })
    expect(handler).toHaveBeenCalledTimes(1)
  })

  it('does not treat a failed sign-in as a lost session', async () => {
    const handler = vi.fn()
    setUnauthorizedHandler(handler)
    vi.stubGlobal('fetch', vi.fn(async () => jsonResponse({ error: { code: 'invalid_credentials', message: 'Incorrect username or password' } }, 401)))
    await expect(api.signIn('a', 'b')).rejects.toMatchObject({ message: 'Incorrect username or password' })
    expect(handler).not.toHaveBeenCalled()
  })

  it('sends the CSRF header on unsafe requests only', async () => {
    const fetchMock = vi.fn(async (_url: string, _init?: RequestInit) => new Response(null, { status: 204 }))
    vi.stubGlobal('fetch', fetchMock)
    await api.deleteMedia('abc')
    await request('/api/users/me').catch(() => undefined)
    const deleteHeaders = new Headers(fetchMock.mock.calls[0][1]?.headers)
    const getHeaders = new Headers(fetchMock.mock.calls[1][1]?.headers)
    expect(fetchMock.mock.calls[0][1]?.method).toBe('DELETE')
    expect(deleteHeaders.get('X-Requested-With')).toBe('mosaic')
    expect(getHeaders.get('X-Requested-With')).toBeNull()
    expect(fetchMock.mock.calls[0][1]?.credentials).toBe('same-origin')
  })

  it('passes the cursor and limit when listing', async () => {
    const fetchMock = vi.fn(async (_url: string) => jsonResponse({ items: [], next_cursor: null }))
    vi.stubGlobal('fetch', fetchMock)
    await api.listMedia('abc', 25)
    expect(fetchMock.mock.calls[0][0]).toBe('/api/media?limit=25&cursor=abc')
  })
})

describe('thumbnailSrc', () => {
  it('keeps the version and adds the size', () => {
    const media = makeMedia({ id: 'm1', thumbnail_url: '/api/media/m1/thumbnail?v=abc-r1' })
    expect(thumbnailSrc(media, 'large')).toBe('/api/media/m1/thumbnail?v=abc-r1&size=large')
  })
})
