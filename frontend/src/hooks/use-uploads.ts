import { useCallback, useState } from 'react'
import { ApiError } from '../api/client'
import type { MediaPublic } from '../api/types'
import { uploadFile } from '../api/upload'

export interface UploadItem {
  key: string
  name: string
  progress: number
  status: 'uploading' | 'done' | 'failed'
  error?: string
}

let counter = 0

/** Uploads several files at once, tracking progress and the API's error per file. */
export function useUploads(onUploaded: (media: MediaPublic) => void) {
  const [uploads, setUploads] = useState<UploadItem[]>([])

  const update = useCallback((key: string, change: Partial<UploadItem>) => {
    setUploads((current) => current.map((item) => (item.key === key ? { ...item, ...change } : item)))
  }, [])

  const addFiles = useCallback(
    (files: Iterable<File>) => {
      for (const file of files) {
        counter += 1
        const key = `upload-${counter}`
        setUploads((current) => [...current, { key, name: file.name, progress: 0, status: 'uploading' }])
        uploadFile(file, (progress) => update(key, { progress })).promise.then(
          (media) => {
            update(key, { status: 'done', progress: 1 })
            onUploaded(media)
          },
          (reason: unknown) => {
            const message = reason instanceof ApiError ? reason.message : 'The upload failed.'
            update(key, { status: 'failed', error: message })
          },
        )
      }
    },
    [onUploaded, update],
  )

  const dismiss = useCallback((key: string) => {
    setUploads((current) => current.filter((item) => item.key !== key))
  }, [])
  const clearFinished = useCallback(() => {
    setUploads((current) => current.filter((item) => item.status === 'uploading'))
  }, [])

  return { uploads, addFiles, dismiss, clearFinished }
}
