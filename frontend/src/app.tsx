import { useCallback, useEffect, useState } from 'react'
import { api, setUnauthorizedHandler } from './api/client'
import type { UserPublic } from './api/types'
import { GalleryPage } from './components/gallery-page'
import { SignInPage } from './components/sign-in-page'
import { UsersPage } from './components/users-page'
import { useRoute } from './hooks/use-route'

export function App() {
  // undefined: still asking the server who we are; null: signed out.
  const [user, setUser] = useState<UserPublic | null | undefined>(undefined)
  const [path, navigate] = useRoute()

  const refreshUser = useCallback(() => {
    api.me().then(setUser, () => setUser(null))
  }, [])

  useEffect(() => {
    setUnauthorizedHandler(() => setUser(null))
    refreshUser()
  }, [refreshUser])

  const signOut = () => {
    api.signOut().finally(() => {
      setUser(null)
      navigate('/')
    })
  }

  if (user === undefined) {
    return (
      <p className="loading" role="status">
        Loading…
      </p>
    )
  }
  if (user === null) return <SignInPage onSignedIn={refreshUser} />

  const onUsersPage = path === '/users' && user.is_admin
  const link = (to: string, label: string) => (
    <a
      href={to}
      aria-current={path === to ? 'page' : undefined}
      onClick={(event) => {
        event.preventDefault()
        navigate(to)
      }}
    >
      {label}
    </a>
  )
  return (
    <>
      <header className="app-header">
        <span className="brand">Mosaic</span>
        <nav aria-label="Main">
          {link('/', 'Gallery')}
          {user.is_admin ? link('/users', 'Users') : null}
        </nav>
        <span className="who">{user.username}</span>
        <button type="button" onClick={signOut}>
          Sign out
        </button>
      </header>
      {onUsersPage ? <UsersPage /> : <GalleryPage key={user.id} user={user} />}
    </>
  )
}
