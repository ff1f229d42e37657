import { ApiError, CSRF_HEADERS, notifyUnauthorized, toApiError } from './client'
import type { MediaPublic } from './types'

export interface UploadHandle {
  promise: Promise<MediaPublic>
  abort: () => void
}

/**
 * Upload one file with progress (fetch has no upload progress, XMLHttpRequest does).
 * `onProgress` receives a fraction from 0 to 1.
 */
export function uploadFile(file: File, onProgress: (fraction: number) => void): UploadHandle {
  const xhr = new XMLHttpRequest()
  const promise = new Promise<MediaPublic>((resolve, reject) => {
    xhr.open('POST', '/api/media')
    xhr.withCredentials = true
    for (const [name, value] of Object.entries(CSRF_HEADERS)) xhr.setRequestHeader(name, value)
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable && event.total > 0) onProgress(event.loaded / event.total)
    }
    xhr.onload = () => {
      let body: unknown = null
      try {
        body = xhr.responseText ? (JSON.parse(xhr.responseText) as unknown) : null
      } catch {
        body = null
      }
      if (xhr.status === 201) {
        onProgress(1)
        resolve(body as MediaPublic)
        return
      }
      if (xhr.status === 401) notifyUnauthorized()
      reject(toApiError(xhr.status, body))
    }
    xhr.onerror = () => reject(new ApiError(0, 'network_error', 'The upload was interrupted.'))
    xhr.onabort = () => reject(new ApiError(0, 'aborted', 'The upload was cancelled.'))
    const form = new FormData()
    form.append('file', file, file.name)
    xhr.send(form)
  })
  return { promise, abort: () => xhr.abort() }
}
