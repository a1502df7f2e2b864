// Coalesces work asked for in one turn of the event loop: the auth lookups and the limiter hits share it.

/**
 * Items pushed during one turn of the event loop (the requests whose bytes, or whose answers, arrived together)
 * are handed to `send` when the loop reaches its check phase (setImmediate), in batches of at most `max`, in the
 * order they were pushed. A lone item waits for nothing but the end of its turn.
 */
export class TurnBatch<T> {
  #items: T[] = []
  #scheduled = false

  constructor (private readonly max: number, private readonly send: (batch: T[]) => void) {}

  push (item: T): void {
    this.#items.push(item)
    if (this.#scheduled) return
    this.#scheduled = true
    setImmediate(() => { this.#flush() })
  }

  #flush (): void {
    this.#scheduled = false
    const items = this.#items
    this.#items = []
    for (let i = 0; i < items.length; i += this.max) this.send(items.slice(i, i + this.max))
  }
}
