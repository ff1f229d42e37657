import { useCallback, useEffect, useRef, useState } from 'react'
import { api, ApiError } from '../api/client'
import type { MediaPublic } from '../api/types'

export interface MediaPages {
  items: MediaPublic[]
  loading: boolean
  error: string | null
  hasMore: boolean
  loadMore: () => void
  prepend: (media: MediaPublic) => void
  remove: (id: string) => void
}

/** The gallery's media, newest first, fetched page by page with the server's cursor. */
export function useMediaPages(pageSize = 50): MediaPages {
  const [items, setItems] = useState<MediaPublic[]>([])
  const [cursor, setCursor] = useState<string | null>(null)
  const [hasMore, setHasMore] = useState(true)
  const [loading, setLoading] = useState(false)
  const [error, setError] = useState<string | null>(null)
  const inFlight = useRef(false)

  const loadMore = useCallback(() => {
    if (inFlight.current || !hasMore) return
    inFlight.current = true
    setLoading(true)
    setError(null)
    api
      .listMedia(cursor, pageSize)
      .then((page) => {
        setItems((current) => {
          const known = new Set(current.map((item) => item.id))
          return [...current, ...page.items.filter((item) => !known.has(item.id))]
        })
        setCursor(page.next_cursor)
        setHasMore(page.next_cursor !== null)
      })
      .catch((reason: unknown) => {
        setError(reason instanceof ApiError ? reason.message : 'Could not load the gallery.')
      })
      .finally(() => {
        inFlight.current = false
        setLoading(false)
      })
  }, [cursor, hasMore, pageSize])

  const loadedFirst = useRef(false)
  useEffect(() => {
    if (loadedFirst.current) return
    loadedFirst.current = true
    loadMore()
  }, [loadMore])

  const prepend = useCallback((media: MediaPublic) => {
    setItems((current) => [media, ...current.filter((item) => item.id !== media.id)])
  }, [])
  const remove = useCallback((id: string) => {
    setItems((current) => current.filter((item) => item.id !== id))
  }, [])

  return { items, loading, error, hasMore, loadMore, prepend, remove }
}
