import { useCallback, useEffect, useRef, useState } from 'react'
import { api, ApiError } from '../api/client'
import type { MediaPublic, UserPublic } from '../api/types'
import { useMediaPages } from '../hooks/use-media-pages'
import { useUploads } from '../hooks/use-uploads'
import { ConfirmDialog } from './confirm-dialog'
import { MediaTile } from './media-tile'
import { UploadPanel } from './upload-panel'
import { Viewer } from './viewer'

interface GalleryPageProps {
  user: UserPublic
}

export function GalleryPage({ user }: GalleryPageProps) {
  const pages = useMediaPages()
  const { items, loading, error, hasMore, loadMore, prepend, remove } = pages
  const { uploads, addFiles, dismiss, clearFinished } = useUploads(prepend)
  const [viewing, setViewing] = useState<number | null>(null)
  const [pendingDelete, setPendingDelete] = useState<MediaPublic | null>(null)
  const [deleting, setDeleting] = useState(false)
  const [deleteError, setDeleteError] = useState<string | null>(null)
  const [dragging, setDragging] = useState(false)
  const sentinel = useRef<HTMLDivElement>(null)
  const picker = useRef<HTMLInputElement>(null)

  const canDelete = useCallback((media: MediaPublic) => user.is_admin || media.owner === user.username, [user])

  // Infinite scroll: fetch the next page when the end of the grid comes near.
  useEffect(() => {
    const target = sentinel.current
    if (!target || !hasMore || typeof IntersectionObserver === 'undefined') return
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((entry) => entry.isIntersecting)) loadMore()
    }, { rootMargin: '600px 0px' })
    observer.observe(target)
    return () => observer.disconnect()
  }, [hasMore, loadMore, items.length])

  const confirmDelete = useCallback(() => {
    if (!pendingDelete) return
    setDeleting(true)
    setDeleteError(null)
    api
      .deleteMedia(pendingDelete.id)
      .then(() => {
        const index = items.findIndex((item) => item.id === pendingDelete.id)
        remove(pendingDelete.id)
        setPendingDelete(null)
        if (viewing !== null) {
          const remaining = items.length - 1
          if (remaining <= 0) setViewing(null)
          else if (index <= viewing) setViewing(Math.max(0, Math.min(viewing - (index < viewing ? 1 : 0), remaining - 1)))
        }
      })
      .catch((reason: unknown) => {
        setDeleteError(reason instanceof ApiError ? reason.message : 'Could not delete.')
      })
      .finally(() => setDeleting(false))
  }, [items, pendingDelete, remove, viewing])

  const cancelDelete = useCallback(() => {
    setPendingDelete(null)
    setDeleteError(null)
  }, [])
  const closeViewer = useCallback(() => setViewing(null), [])

  return (
    <main
      className={dragging ? 'gallery dragging' : 'gallery'}
      onDragOver={(event) => {
        if (!event.dataTransfer.types.includes('Files')) return
        event.preventDefault()
        setDragging(true)
      }}
      onDragLeave={(event) => {
        if (event.currentTarget === event.target) setDragging(false)
      }}
      onDrop={(event) => {
        event.preventDefault()
        setDragging(false)
        if (event.dataTransfer.files.length > 0) addFiles(Array.from(event.dataTransfer.files))
      }}
    >
      <div className="toolbar">
        <h1>Gallery</h1>
        <button type="button" className="primary" onClick={() => picker.current?.click()}>
          Upload photos
        </button>
        <input
          ref={picker}
          type="file"
          accept="image/*"
          multiple
          hidden
          data-testid="file-input"
          onChange={(event) => {
            if (event.target.files) addFiles(Array.from(event.target.files))
            event.target.value = ''
          }}
        />
      </div>
      <UploadPanel uploads={uploads} onDismiss={dismiss} onClear={clearFinished} />
      {dragging ? <div className="drop-hint" aria-hidden="true">Drop photos to upload</div> : null}

      {items.length > 0 ? (
        <ul className="grid" aria-label="Media">
          {items.map((media, index) => (
            <MediaTile
              key={media.id}
              media={media}
              canDelete={canDelete(media)}
              onOpen={() => setViewing(index)}
              onDelete={() => setPendingDelete(media)}
            />
          ))}
        </ul>
      ) : null}

      {!loading && !error && items.length === 0 && !hasMore ? (
        <div className="empty">
          <h2>No photos yet</h2>
          <p>Drop photos anywhere on this page, or use “Upload photos”.</p>
        </div>
      ) : null}
      {error ? (
        <div className="error-state" role="alert">
          <p>{error}</p>
          <button type="button" onClick={loadMore}>
            Try again
          </button>
        </div>
      ) : null}
      {loading ? (
        <p className="loading" role="status">
          Loading…
        </p>
      ) : null}
      <div ref={sentinel} className="sentinel" />
      {hasMore && !loading && !error ? (
        <button type="button" className="load-more" onClick={loadMore}>
          Load more
        </button>
      ) : null}

      {viewing !== null && items[viewing] ? (
        <Viewer
          items={items}
          index={viewing}
          canDelete={canDelete}
          onIndex={setViewing}
          onClose={closeViewer}
          onDelete={setPendingDelete}
          paused={pendingDelete !== null}
        />
      ) : null}
      {pendingDelete ? (
        <ConfirmDialog
          title="Delete this photo?"
          message={`“${pendingDelete.filename}” and all its thumbnails will be deleted for good.`}
          confirmLabel="Delete"
          busy={deleting}
          error={deleteError}
          onConfirm={confirmDelete}
          onCancel={cancelDelete}
        />
      ) : null}
    </main>
  )
}
