// A signal that fires when the client goes away before its answer is complete, made only when something asks for it.
import type { ServerResponse } from 'node:http'

/**
 * The `signal` of one request: aborted when the response closes before it finished (the client hung up). Most calls
 * never read it (only long operations such as wait_for_build do), so the AbortController and the response's 'close'
 * listener are made on first read, not per request. A response that already closed unfinished gives an aborted signal.
 */
export class Disconnect {
  #controller: AbortController | null = null

  constructor (private readonly raw: ServerResponse) {}

  get signal (): AbortSignal {
    if (this.#controller !== null) return this.#controller.signal
    const controller = new AbortController()
    this.#controller = controller
    const raw = this.raw
    if (raw.closed) {
      if (!raw.writableFinished) controller.abort()
    } else {
      raw.once('close', () => { if (!raw.writableFinished) controller.abort() })
    }
    return controller.signal
  }
}
