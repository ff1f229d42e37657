import { useRef, useState } from 'react'
import { thumbnailSrc } from '../api/client'
import type { MediaPublic } from '../api/types'
import { useNearViewport } from '../hooks/use-near-viewport'

interface MediaTileProps {
  media: MediaPublic
  canDelete: boolean
  onOpen: () => void
  onDelete: () => void
}

/**
 * One thumbnail. It gets its URL only once it comes near the viewport (and
 * loading="lazy" as a second guard), width/height reserve its box so nothing
 * jumps, srcset picks the 512 px preset on high-density screens, and the tile's
 * neutral background shows until the image has loaded.
 */
export function MediaTile({ media, canDelete, onOpen, onDelete }: MediaTileProps) {
  const [loaded, setLoaded] = useState(false)
  const ref = useRef<HTMLLIElement>(null)
  const near = useNearViewport(ref)
  const medium = thumbnailSrc(media, 'medium')
  const large = thumbnailSrc(media, 'large')
  return (
    <li ref={ref} className={loaded ? 'tile loaded' : 'tile'}>
      <button type="button" className="tile-open" onClick={onOpen} title={media.filename}>
        <img
          src={near ? medium : undefined}
          srcSet={near ? `${medium} 1x, ${large} 2x` : undefined}
          width={media.width}
          height={media.height}
          loading="lazy"
          decoding="async"
          alt={media.filename}
          onLoad={() => setLoaded(true)}
        />
      </button>
      {canDelete ? (
        <button type="button" className="tile-delete" aria-label={`Delete ${media.filename}`} onClick={onDelete}>
          <span aria-hidden="true">×</span>
        </button>
      ) : null}
    </li>
  )
}
