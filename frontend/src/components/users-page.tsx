import { type FormEvent, useState } from 'react'
import { api, ApiError } from '../api/client'

/** Admins create accounts here (the API has no user listing yet). */
export function UsersPage() {
  const [username, setUsername] = useState('')
  const [password, setPassword] = useState('')
  const [isAdmin, setIsAdmin] = useState(false)
  const [busy, setBusy] = useState(false)
  const [message, setMessage] = useState<{ kind: 'ok' | 'error'; text: string } | null>(null)

  const submit = (event: FormEvent) => {
    event.preventDefault()
    setBusy(true)
    setMessage(null)
    api
      .createUser({ username, password, is_admin: isAdmin })
      .then((user) => {
        setMessage({ kind: 'ok', text: `Created ${user.is_admin ? 'admin' : 'user'} “${user.username}”.` })
        setUsername('')
        setPassword('')
        setIsAdmin(false)
      })
      .catch((reason: unknown) =>
        setMessage({ kind: 'error', text: reason instanceof ApiError ? reason.message : 'Could not create the user.' }),
      )
      .finally(() => setBusy(false))
  }

  return (
    <main className="users">
      <h1>Users</h1>
      <form onSubmit={submit} aria-label="Create user">
        <h2>Create a user</h2>
        <label>
          Username
          <input name="new-username" required value={username} onChange={(e) => setUsername(e.target.value)} />
        </label>
        <label>
          Password <span className="muted">(at least 8 characters)</span>
          <input
            name="new-password"
            type="password"
            autoComplete="new-password"
            required
            minLength={8}
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </label>
        <label className="checkbox">
          <input type="checkbox" checked={isAdmin} onChange={(e) => setIsAdmin(e.target.checked)} />
          Administrator
        </label>
        {message ? (
          <p className={message.kind === 'ok' ? 'success' : 'error'} role={message.kind === 'ok' ? 'status' : 'alert'}>
            {message.text}
          </p>
        ) : null}
        <button type="submit" className="primary" disabled={busy}>
          Create user
        </button>
      </form>
    </main>
  )
}
