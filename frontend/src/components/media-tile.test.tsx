import { act, render, screen } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { describe, expect, it, vi } from 'vitest'
import { makeMedia } from '../test/fixtures'
import { MediaTile } from './media-tile'

describe('MediaTile', () => {
  it('is a lazy, sized image with a 1x/2x srcset and the filename as alt', () => {
    const media = makeMedia({ id: 'm1', filename: 'sunset.jpg', width: 4000, height: 3000, thumbnail_url: '/api/media/m1/thumbnail?v=x-r1' })
    render(<MediaTile media={media} canDelete={false} onOpen={() => {}} onDelete={() => {}} />)
    const img = screen.getByRole('img', { name: 'sunset.jpg' })
    expect(img).toHaveAttribute('loading', 'lazy')
    expect(img).toHaveAttribute('decoding', 'async')
    expect(img).toHaveAttribute('width', '4000')
    expect(img).toHaveAttribute('height', '3000')
    expect(img).toHaveAttribute('src', '/api/media/m1/thumbnail?v=x-r1&size=medium')
    expect(img).toHaveAttribute(
      'srcset',
      '/api/media/m1/thumbnail?v=x-r1&size=medium 1x, /api/media/m1/thumbnail?v=x-r1&size=large 2x',
    )
    expect(screen.queryByRole('button', { name: /delete/i })).toBeNull()
  })

  it('offers delete only when allowed, and opens on click', async () => {
    const onOpen = vi.fn()
    const onDelete = vi.fn()
    render(<MediaTile media={makeMedia({ filename: 'dog.png' })} canDelete onOpen={onOpen} onDelete={onDelete} />)
    await userEvent.click(screen.getByRole('button', { name: 'Delete dog.png' }))
    expect(onDelete).toHaveBeenCalledTimes(1)
    await userEvent.click(screen.getByRole('img', { name: 'dog.png' }))
    expect(onOpen).toHaveBeenCalledTimes(1)
  })
})

describe('MediaTile far from the viewport', () => {
  it('requests nothing until it comes near', () => {
    let notify: ((entries: Partial<IntersectionObserverEntry>[]) => void) | null = null
    class FakeObserver {
      constructor(callback: (entries: Partial<IntersectionObserverEntry>[]) => void) {
        notify = callback
      }
      observe = vi.fn()
      unobserve = vi.fn()
      disconnect = vi.fn()
    }
    vi.stubGlobal('IntersectionObserver', FakeObserver)
    try {
      render(<MediaTile media={makeMedia({ filename: 'far.jpg' })} canDelete={false} onOpen={() => {}} onDelete={() => {}} />)
      const img = screen.getByRole('img', { name: 'far.jpg' })
      expect(img).not.toHaveAttribute('src')
      expect(img).not.toHaveAttribute('srcset')
      expect(img).toHaveAttribute('width', '4000')
      const tile = img.closest('li') as Element
      act(() => notify?.([{ isIntersecting: true, target: tile }]))
      expect(img).toHaveAttribute('src', expect.stringContaining('size=medium'))
    } finally {
      vi.unstubAllGlobals()
    }
  })
})
