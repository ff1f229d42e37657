import { act, render, screen, waitFor, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { UserPublic } from '../api/types'
import { FakeXhr, jsonResponse, makeMedia } from '../test/fixtures'
import { GalleryPage } from './gallery-page'

const alice: UserPublic = { id: 'u1', username: 'alice', is_admin: false, created_at: '2026-11-21T00:00:00+00:00' }

beforeEach(() => {
  FakeXhr.instances = []
  vi.stubGlobal('XMLHttpRequest', FakeXhr)
})
afterEach(() => vi.unstubAllGlobals())

function file(name: string): File {
  return new File([new Uint8Array(2048)], name, { type: 'image/jpeg' })
}

describe('GalleryPage uploads', () => {
  it('shows progress per file, the API message for a failure, and new items without reload', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => jsonResponse({ items: [], next_cursor: null })))
    render(<GalleryPage user={alice} />)
    expect(await screen.findByText('No photos yet')).toBeInTheDocument()

    await userEvent.upload(screen.getByTestId('file-input'), [file('good.jpg'), file('huge.jpg')])
    expect(FakeXhr.instances).toHaveLength(2)
    const [good, huge] = FakeXhr.instances
    expect(good.method).toBe('POST')
    expect(good.url).toBe('/api/media')
    expect(good.headers['X-Requested-With']).toBe('mosaic')
    expect((good.body as FormData).get('file')).toHaveProperty('name', 'good.jpg')

    act(() => good.progress(512, 2048))
    const goodBar = screen.getByRole('progressbar', { name: 'Upload progress of good.jpg' })
    expect(goodBar).toHaveAttribute('value', '0.25')
    expect(screen.getByText('25%')).toBeInTheDocument()

    act(() => huge.respond(413, { error: { code: 'file_too_large', message: 'The file is larger than 209715200 bytes' } }))
    expect(await screen.findByRole('alert')).toHaveTextContent('The file is larger than 209715200 bytes')

    const uploaded = makeMedia({ filename: 'good.jpg', owner: 'alice' })
    act(() => good.respond(201, uploaded))
    const grid = await screen.findByRole('list', { name: 'Media' })
    expect(within(grid).getByRole('img', { name: 'good.jpg' })).toBeInTheDocument()
    expect(screen.getByText('Uploaded')).toBeInTheDocument()
    expect(screen.queryByText('No photos yet')).toBeNull()
  })
})

describe('GalleryPage delete', () => {
  it('asks first, deletes on confirm, and keeps the item on cancel', async () => {
    const photo = makeMedia({ filename: 'cat.jpg', owner: 'alice' })
    const fetchMock = vi.fn(async (_url: string, init?: RequestInit) => {
      if (init?.method === 'DELETE') return new Response(null, { status: 204 })
      return jsonResponse({ items: [photo], next_cursor: null })
    })
    vi.stubGlobal('fetch', fetchMock)
    const user = userEvent.setup()
    render(<GalleryPage user={alice} />)
    await screen.findByRole('img', { name: 'cat.jpg' })

    await user.click(screen.getByRole('button', { name: 'Delete cat.jpg' }))
    expect(screen.getByRole('alertdialog')).toBeInTheDocument()
    await user.keyboard('{Escape}')
    expect(screen.queryByRole('alertdialog')).toBeNull()
    expect(screen.getByRole('img', { name: 'cat.jpg' })).toBeInTheDocument()

    await user.click(screen.getByRole('button', { name: 'Delete cat.jpg' }))
    await user.click(within(screen.getByRole('alertdialog')).getByRole('button', { name: 'Delete' }))
    await waitFor(() => expect(screen.queryByRole('img', { name: 'cat.jpg' })).toBeNull())
    const deleteCall = fetchMock.mock.calls.find(([, init]) => init?.method === 'DELETE')
    expect(deleteCall?.[0]).toBe(`/api/media/${photo.id}`)
  })

  it('hides delete on media the user does not own', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => jsonResponse({ items: [makeMedia({ filename: 'x.jpg', owner: 'bob' })], next_cursor: null })))
    render(<GalleryPage user={alice} />)
    await screen.findByRole('img', { name: 'x.jpg' })
    expect(screen.queryByRole('button', { name: 'Delete x.jpg' })).toBeNull()
  })
})
