import { render, screen } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { describe, expect, it, vi } from 'vitest'
import { ConfirmDialog } from './confirm-dialog'

function renderDialog() {
  const onConfirm = vi.fn()
  const onCancel = vi.fn()
  render(
    <>
      <button type="button">outside</button>
      <ConfirmDialog title="Delete this photo?" message="Gone for good." confirmLabel="Delete" onConfirm={onConfirm} onCancel={onCancel} />
    </>,
  )
  return { onConfirm, onCancel }
}

describe('ConfirmDialog', () => {
  it('is a labelled modal that starts on Cancel', () => {
    renderDialog()
    const dialog = screen.getByRole('alertdialog', { name: 'Delete this photo?' })
    expect(dialog).toHaveAttribute('aria-modal', 'true')
    expect(screen.getByRole('button', { name: 'Cancel' })).toHaveFocus()
  })

  it('keeps focus inside with Tab and Shift+Tab', async () => {
    renderDialog()
    const user = userEvent.setup()
    await user.tab()
    expect(screen.getByRole('button', { name: 'Delete' })).toHaveFocus()
    await user.tab()
    expect(screen.getByRole('button', { name: 'Cancel' })).toHaveFocus()
    await user.tab({ shift: true })
    expect(screen.getByRole('button', { name: 'Delete' })).toHaveFocus()
    expect(screen.getByRole('button', { name: 'outside' })).not.toHaveFocus()
  })

  it('cancels on Escape and on Cancel, confirms on Delete', async () => {
    const { onConfirm, onCancel } = renderDialog()
    const user = userEvent.setup()
    await user.keyboard('{Escape}')
    expect(onCancel).toHaveBeenCalledTimes(1)
    await user.click(screen.getByRole('button', { name: 'Cancel' }))
    expect(onCancel).toHaveBeenCalledTimes(2)
    expect(onConfirm).not.toHaveBeenCalled()
    await user.click(screen.getByRole('button', { name: 'Delete' }))
    expect(onConfirm).toHaveBeenCalledTimes(1)
  })
})
