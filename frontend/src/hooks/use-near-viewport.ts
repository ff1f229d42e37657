import { type RefObject, useEffect, useState } from 'react'

// One observer for every tile: hundreds of tiles, one callback.
const MARGIN = '300px 0px'
const callbacks = new WeakMap<Element, () => void>()
let observer: IntersectionObserver | null = null

function sharedObserver(): IntersectionObserver {
  observer ??= new IntersectionObserver(
    (entries) => {
      for (const entry of entries) {
        if (!entry.isIntersecting) continue
        callbacks.get(entry.target)?.()
        observer?.unobserve(entry.target)
        callbacks.delete(entry.target)
      }
    },
    { rootMargin: MARGIN },
  )
  return observer
}

/**
 * True once `ref` has come within 300 px of the viewport, and from then on.
 * Where IntersectionObserver is missing it is true at once (and loading="lazy"
 * still applies).
 */
export function useNearViewport(ref: RefObject<Element | null>): boolean {
  const supported = typeof IntersectionObserver !== 'undefined'
  const [near, setNear] = useState(!supported)
  useEffect(() => {
    const element = ref.current
    if (!supported || near || !element) return
    const shared = sharedObserver()
    callbacks.set(element, () => setNear(true))
    shared.observe(element)
    return () => {
      shared.unobserve(element)
      callbacks.delete(element)
    }
  }, [near, ref, supported])
  return near
}
