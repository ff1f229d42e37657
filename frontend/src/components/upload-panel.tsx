import type { UploadItem } from '../hooks/use-uploads'

interface UploadPanelProps {
  uploads: UploadItem[]
  onDismiss: (key: string) => void
  onClear: () => void
}

/** One row per file: a progress bar while it uploads, then done or the API's error. */
export function UploadPanel({ uploads, onDismiss, onClear }: UploadPanelProps) {
  if (uploads.length === 0) return null
  const finished = uploads.some((item) => item.status !== 'uploading')
  return (
    <section className="uploads" aria-label="Uploads">
      <ul>
        {uploads.map((item) => (
          <li key={item.key} className={`upload ${item.status}`} data-testid="upload-row">
            <span className="upload-name">{item.name}</span>
            <progress max={1} value={item.progress} aria-label={`Upload progress of ${item.name}`} />
            {item.status === 'failed' ? (
              <span className="error" role="alert">
                {item.error}
              </span>
            ) : (
              <span className="muted">{item.status === 'done' ? 'Uploaded' : `${Math.round(item.progress * 100)}%`}</span>
            )}
            {item.status !== 'uploading' ? (
              <button type="button" className="link" onClick={() => onDismiss(item.key)} aria-label={`Dismiss ${item.name}`}>
                ×
              </button>
            ) : null}
          </li>
        ))}
      </ul>
      {finished ? (
        <button type="button" className="link" onClick={onClear}>
          Clear finished
        </button>
      ) : null}
    </section>
  )
}
