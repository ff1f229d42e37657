import { useCallback, useEffect, useRef } from 'react'
import { originalHref, thumbnailSrc } from '../api/client'
import type { MediaPublic } from '../api/types'
import { useFocusTrap } from '../hooks/use-focus-trap'

interface ViewerProps {
  items: MediaPublic[]
  index: number
  canDelete: (media: MediaPublic) => boolean
  onIndex: (index: number) => void
  onClose: () => void
  onDelete: (media: MediaPublic) => void
  paused: boolean
}

/** A larger view with previous/next (arrow keys), Escape to close and a download link. */
export function Viewer({ items, index, canDelete, onIndex, onClose, onDelete, paused }: ViewerProps) {
  const ref = useRef<HTMLDivElement>(null)
  const media = items[index]
  const previous = useCallback(() => onIndex(Math.max(0, index - 1)), [index, onIndex])
  const next = useCallback(() => onIndex(Math.min(items.length - 1, index + 1)), [index, items.length, onIndex])
  const close = useCallback(() => {
    if (!paused) onClose()
  }, [onClose, paused])
  useFocusTrap(ref, close)

  useEffect(() => {
    if (paused) return
    const onKeyDown = (event: KeyboardEvent) => {
      if (event.key === 'ArrowLeft') previous()
      else if (event.key === 'ArrowRight') next()
    }
    window.addEventListener('keydown', onKeyDown)
    return () => window.removeEventListener('keydown', onKeyDown)
  }, [next, previous, paused])

  if (!media) return null
  return (
    <div className="viewer" role="dialog" aria-modal="true" aria-label={media.filename} ref={ref}>
      <div className="viewer-bar">
        <span className="viewer-title">
          {media.filename} <span className="muted">({index + 1} of {items.length})</span>
        </span>
        <a href={originalHref(media)} download={media.filename}>
          Download original
        </a>
        {canDelete(media) ? (
          <button type="button" className="danger" onClick={() => onDelete(media)}>
            Delete
          </button>
        ) : null}
        <button type="button" onClick={onClose} aria-label="Close viewer" data-autofocus>
          Close
        </button>
      </div>
      <div className="viewer-stage">
        <button type="button" className="viewer-nav" onClick={previous} disabled={index === 0} aria-label="Previous">
          ‹
        </button>
        <img key={media.id} src={thumbnailSrc(media, 'large')} alt={media.filename} width={media.width} height={media.height} />
        <button
          type="button"
          className="viewer-nav"
          onClick={next}
          disabled={index >= items.length - 1}
          aria-label="Next"
        >
          ›
        </button>
      </div>
    </div>
  )
}
