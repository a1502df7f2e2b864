// Text that comes from CI (logs, test messages, artifacts, commit messages) made safe to hand to a model as data (SPEC §11).

/**
 * ANSI escape sequences: CSI (`ESC [` … final byte, and its 8-bit form U+009B), OSC (`ESC ]` … BEL or ST),
 * DCS/SOS/PM/APC strings (`ESC P|X|^|_` … ST) and the two-byte escapes (`ESC` + one byte). A string sequence
 * that is never terminated ends at the line's end (at most 2048 characters), so one stray ESC cannot swallow
 * the rest of a log.
 */
// eslint-disable-next-line no-control-regex -- matching escape sequences is the point
const ANSI = /\u001b\[[0-?]*[ -/]*[@-~]|\u009b[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b\n]{0,2048}(?:\u0007|\u001b\\)?|\u001b[PX^_][^\u001b\n]{0,2048}(?:\u001b\\)?|\u001b[ -/]*[0-~]?/g

/**
 * What is left after the escape sequences: C0 controls but `\n` and `\t`, DEL, C1 controls, the BiDi
 * embeddings, overrides and isolates (U+202A–202E, U+2066–2069), the directional marks (U+200E/F, U+061C),
 * and the Unicode tag characters (U+E0000–E007F), which render as nothing and are a known way to hide
 * instructions from a human reader of the same text.
 */
// eslint-disable-next-line no-control-regex -- removing control characters is the point
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u{e0000}-\u{e007f}]/gu

/** One test for both sets, so clean text (the common case) is scanned once and returned as is. */
// eslint-disable-next-line no-control-regex -- see above
const ANY_UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u{e0000}-\u{e007f}]/u

/** `s` without ANSI escape sequences, control characters (except `\n` and `\t`) and BiDi/invisible formatting characters. */
export function untrustedText (s: string): string {
  if (!ANY_UNSAFE.test(s)) return s
  return s.replace(ANSI, '').replace(UNSAFE, '')
}

/** Every string inside a JSON-like value passed through untrustedText (keys included); other values as they are. */
export function untrustedValue (value: unknown): unknown {
  if (typeof value === 'string') return untrustedText(value)
  if (Array.isArray(value)) return value.map(untrustedValue)
  if (typeof value === 'object' && value !== null) return untrustedRecord(value)
  return value
}

/** An object with every string inside it passed through untrustedText (MCP structured content, REST answers). */
export function untrustedRecord (value: object): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, inner] of Object.entries(value)) out[untrustedText(key)] = untrustedValue(inner)
  return out
}

/**
 * JSON.stringify writes these characters of ANY_UNSAFE as escapes (`\b`, `\f`, `\r`, `\u00XX`): a JSON text that
 * has none of them, and none of ANY_UNSAFE's characters raw, holds no string untrustedText would change. (An
 * escaped backslash before one of these letters matches too: that only sends the value through the walk.)
 */
const UNSAFE_ESCAPE = /\\[bfru]/

/**
 * A JSON-like record made data (untrustedRecord) and its JSON text, stringified once: when the text shows
 * nothing to remove (the common case), the record is returned as it is, without the copy the walk makes.
 * The text is always JSON.stringify of the returned record.
 */
export function untrustedJson (value: object): { record: Record<string, unknown>, json: string } {
  const json = JSON.stringify(value)
  if (!ANY_UNSAFE.test(json) && !(json.includes('\\') && UNSAFE_ESCAPE.test(json))) return { record: value as Record<string, unknown>, json }
  const record = untrustedRecord(value)
  return { record, json: JSON.stringify(record) }
}
