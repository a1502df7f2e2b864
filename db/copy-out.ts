// COPY (query) TO STDOUT (FORMAT binary) on a pg client, row by row as PostgreSQL streams them: fields as raw bytes (no text decoding), no cursor round trips, memory bounded by one row.
import type pg from 'pg'

/** The 11-byte signature a binary COPY starts with (then a flags word and the header extension's length). */
const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1')
const HEADER_BYTES = SIGNATURE.length + 8

/**
 * Called once per row with its fields: views into pg's receive buffer, valid only during the call (copy what you
 * keep); a NULL field fails the statement (select none). Returns false to ignore the rest of the rows (they still arrive and are dropped: COPY
 * cannot be stopped without cancelling the statement).
 */
export type CopyRowHandler = (fields: readonly Buffer[]) => boolean | undefined

interface CopyOptions {
  /** the client-side bound on the whole statement (pg's query_timeout), ms; 0 = none */
  timeoutMs?: number
}

/** What pg-protocol hands a submittable for a CopyData message. */
interface CopyDataMessage { chunk: Buffer }

/**
 * One COPY … TO STDOUT (FORMAT binary) as a pg Submittable. PostgreSQL sends each row as one CopyData message
 * (protocol §55.2.5: "messages sent from the backend will always correspond to single data rows"), the file header
 * in front of the first row and the trailer (-1) alone; a message that is not exactly one row fails the statement.
 * Rows are handed over synchronously from the socket's data handler, so while the handler works no more is read and
 * PostgreSQL waits on TCP's window: the process holds one row plus pg's receive buffer, whatever the result's size.
 */
class CopyOut {
  readonly text: string
  // pg's client reads these two off a submittable: it wraps `callback` with its read timeout
  callback: ((err: Error | null) => void) | undefined
  readonly query_timeout: number | undefined
  rows = 0
  private headerSeen = false
  private ignoring = false
  private failure: Error | null = null
  private settled = false
  private readonly onRow: CopyRowHandler
  private readonly settle: (err: Error | null) => void

  constructor (text: string, onRow: CopyRowHandler, opts: CopyOptions, settle: (err: Error | null) => void) {
    this.text = text
    this.onRow = onRow
    this.query_timeout = opts.timeoutMs
    this.settle = settle
    this.callback = (err) => { this.finish(err) }
  }

  private finish (err: Error | null): void {
    if (this.settled) return
    this.settled = true
    this.settle(err)
  }

  submit (connection: pg.Connection): void {
    connection.query(this.text) // the simple protocol: COPY takes no parameters
  }

  handleCopyData (msg: CopyDataMessage): void {
    if (this.ignoring) return
    try {
      const fields = this.parse(msg.chunk)
      if (fields === null) return
      this.rows++
      if (this.onRow(fields) === false) this.ignoring = true
    } catch (err) {
      // keep draining: the statement ends on its own and the connection stays usable; the error is the answer
      this.failure = err instanceof Error ? err : new Error(String(err))
      this.ignoring = true
    }
  }

  /** The row in one CopyData message, or null for the trailer. */
  private parse (chunk: Buffer): Buffer[] | null {
    let at = 0
    if (!this.headerSeen) {
      if (chunk.length < HEADER_BYTES || !chunk.subarray(0, SIGNATURE.length).equals(SIGNATURE)) throw new Error('COPY: not a binary COPY stream')
      at = HEADER_BYTES + chunk.readUInt32BE(SIGNATURE.length + 4)
      this.headerSeen = true
      if (at === chunk.length) return null
    }
    const count = chunk.readInt16BE(at)
    at += 2
    if (count === -1) return null
    const fields: Buffer[] = []
    for (let i = 0; i < count; i++) {
      const len = chunk.readInt32BE(at)
      at += 4
      if (len === -1) throw new Error('COPY: unexpected NULL field')
      fields.push(chunk.subarray(at, at + len))
      at += len
    }
    if (at !== chunk.length) throw new Error('COPY: a CopyData message that is not exactly one row')
    return fields
  }

  handleError (err: Error): void {
    // an ErrorResponse (ReadyForQuery follows) or a dead connection (nothing follows): answer now either way, through
    // the callback so that pg clears its read timeout
    this.callback?.(err)
  }

  handleReadyForQuery (): void {
    this.callback?.(this.failure)
  }

  handleCopyInResponse (connection: pg.Connection): void {
    // not a COPY FROM: refuse to send anything
    (connection as unknown as { sendCopyFail: (msg: string) => void }).sendCopyFail('COPY FROM is not supported here')
  }

  handleCommandComplete (): void {}
  handleRowDescription (): void {}
  handleDataRow (): void {}
  handleEmptyQuery (): void {}
  handlePortalSuspended (): void {}
}

/**
 * Runs `text` (a `COPY (…) TO STDOUT (FORMAT binary)` statement) on `client` and calls `onRow` for every row, in the
 * order PostgreSQL sends them. Resolves with the number of rows handed to `onRow` once PostgreSQL is ready for the
 * next statement; rejects with the server's error, pg's read timeout, or what `onRow` threw (the rest of the rows
 * drained first). After a rejection the client may be mid-stream: release it as broken.
 */
export async function copyOutBinary (client: pg.ClientBase, text: string, onRow: CopyRowHandler, opts: CopyOptions = {}): Promise<number> {
  let copy: CopyOut | undefined
  await new Promise<void>((resolve, reject) => {
    copy = new CopyOut(text, onRow, opts, err => { if (err === null) resolve(); else reject(err) })
    client.query(copy)
  })
  return copy?.rows ?? 0
}
