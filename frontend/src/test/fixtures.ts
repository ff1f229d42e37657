import type { MediaPublic } from '../api/types'

export function makeMedia(overrides: Partial<MediaPublic> = {}): MediaPublic {
  const id = overrides.id ?? crypto.randomUUID()
  return {
    id,
    filename: 'beach.jpg',
    content_type: 'image/jpeg',
    size: 1234,
    width: 4000,
    height: 3000,
    sha256: 'a'.repeat(64),
    owner: 'alice',
    created_at: '2026-11-21T10:00:00+00:00',
    thumbnail_url: `/api/media/${id}/thumbnail?v=aaaaaaaaaaaa-r1`,
    ...overrides,
  }
}

export function jsonResponse(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } })
}

type Listener = (event: ProgressEvent) => void

/** Stands in for XMLHttpRequest (jsdom cannot reach a server); the test drives it. */
export class FakeXhr {
  static instances: FakeXhr[] = []
  upload: { onprogress: Listener | null } = { onprogress: null }
  onload: (() => void) | null = null
  onerror: (() => void) | null = null
  onabort: (() => void) | null = null
  withCredentials = false
  status = 0
  responseText = ''
  method = ''
  url = ''
  headers: Record<string, string> = {}
  body: FormData | null = null

  constructor() {
    FakeXhr.instances.push(this)
  }
  open(method: string, url: string): void {
    this.method = method
    this.url = url
  }
  setRequestHeader(name: string, value: string): void {
    this.headers[name] = value
  }
  send(body: FormData): void {
    this.body = body
  }
  abort(): void {
    this.onabort?.()
  }
  progress(loaded: number, total: number): void {
    this.upload.onprogress?.({ lengthComputable: true, loaded, total } as ProgressEvent)
  }
  respond(status: number, body: unknown): void {
    this.status = status
    this.responseText = JSON.stringify(body)
    this.onload?.()
  }
}
