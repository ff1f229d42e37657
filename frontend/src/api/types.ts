// Mirrors the backend's response models (backend/mosaic/schemas.py).

export interface UserPublic {
  id: string
  username: string
  is_admin: boolean
  created_at: string
}

export interface UserCreate {
  username: string
  password: string
  is_admin: boolean
}

export interface MediaPublic {
  id: string
  filename: string
  content_type: string
  size: number
  width: number
  height: number
  sha256: string
  owner: string
  created_at: string
  thumbnail_url: string
}

export interface MediaPage {
  items: MediaPublic[]
  next_cursor: string | null
}

export interface ErrorBody {
  error: { code: string; message: string }
}

export type ThumbnailSize = 'small' | 'medium' | 'large'
