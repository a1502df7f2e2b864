// The error-line heuristic of the failure summary (SPEC §11): which lines of a CI log say why it failed, and what kind of failure each names.
import { untrustedText } from '../lib/text.js'

/** What a recognised line names; `error` is the catch-all for lines that say error/failed without a known tool's shape. */
export type ErrorKind = 'compiler' | 'linker' | 'test' | 'traceback' | 'npm' | 'fatal' | 'exit_code' | 'error'

export const ERROR_KINDS: readonly ErrorKind[] = ['compiler', 'linker', 'test', 'traceback', 'npm', 'fatal', 'exit_code', 'error']

/**
 * InfraBox writes every log line as `HH:MM:SS|text`. The prefix is part of the stored line (line numbers and byte
 * offsets count it) but is not shown in answers and never matched.
 */
const PREFIX = /^\d{2}:\d{2}:\d{2}\|/

/** The line as shown: ANSI escapes and control/BiDi characters removed, InfraBox's time prefix dropped. */
export function displayLine (raw: string): string {
  const clean = untrustedText(raw.endsWith('\r') ? raw.slice(0, -1) : raw)
  return clean.length >= 9 && clean.charCodeAt(8) === 124 && PREFIX.test(clean) ? clean.slice(9) : clean
}

/**
 * The rules, first match wins. Each is one regular expression over the displayed line (no nested quantifiers, so a
 * line costs linear time). Written against the output of the tools CI runs most:
 *  - compiler: TypeScript (`error TS2322`), gcc/clang/javac/swift (`file:12:3: error:`), rustc (`error[E0308]`),
 *    C# (`error CS1002`), Go (`./main.go:5:2: undefined: x`), Python/JS syntax errors;
 *  - linker: `undefined reference to`, `ld: …`/`collect2: error`, `ld returned 1 exit status`, `Undefined symbols`;
 *  - test: jest/vitest `FAIL path`, Go `--- FAIL:`, pytest `FAILED a::b` and `= N failed`, TAP `not ok N`,
 *    mocha's `N failing`, JUnit/maven `Tests run: … Failures: N` (N > 0), `AssertionError`;
 *  - traceback: Python's `Traceback (most recent call last):` and the `SomethingError: message` line that ends it;
 *  - npm: `npm ERR!` (npm ≤ 9) and `npm error` (npm 10+), yarn/pnpm `ERR_PNPM_…`, `error Command failed`;
 *  - fatal: `FATAL`, `fatal:` (git), `panic:` (Go), `Segmentation fault`, `Killed`, `OOMKilled`, `Out of memory`;
 *  - exit_code: `exit code N`/`exited with code N`/`exit status N` with N ≠ 0, `returned a non-zero code`,
 *    make's `*** [target] Error N`;
 *  - error: a line starting with `error`/`ERROR`/`[ERROR]`/`E ` (pytest), or saying `BUILD FAILED`/`BUILD FAILURE`,
 *    `Error:` anywhere, `Exception in thread`.
 * Lines that only report the absence of errors (`0 errors`, `no errors`, `errors: 0`, `0 failed`, `-Werror`) are not
 * error lines.
 */
const RULES: ReadonlyArray<readonly [ErrorKind, RegExp]> = [
  ['compiler', /\berror TS\d{4,5}\b|:\d+(?::\d+)?:? (?:fatal )?error:|\berror\[E\d{4}\]|\berror CS\d{4}\b|^\S+\.go:\d+:\d+: |\b(?:SyntaxError|IndentationError|TabError): |\bcompilation (?:failed|terminated)|\bCompilation failed\b|^Found \d+ errors?\b/],
  ['linker', /\bundefined reference to\b|\bcollect2: error\b|\bld(?:\.\w+)?: (?:error|cannot find|fatal)|\bld returned \d+ exit status|\bUndefined symbols for architecture\b|\blinker command failed\b|\bunresolved external symbol\b/],
  ['traceback', /^Traceback \(most recent call last\):|^(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Exit|Interrupt): /],
  ['npm', /^npm (?:ERR!|error\b)|\bERR_PNPM_\w+|^error Command failed\b|^yarn run .* failed\b/],
  ['test', /^\s*FAIL\s+\S|^\s*--- FAIL: |^FAILED \S|^=+ .*\b\d+ (?:failed|errors?)\b.*=+$|^not ok \d+|^\s*\d+ failing\b|\bTests run: \d+, Failures: [1-9]|\bTests: +\d+ failed\b|\bAssertionError\b|\bTest(?:s)? failed\b/],
  ['fatal', /\bFATAL\b|^fatal: |^panic: |\bSegmentation fault\b|\bcore dumped\b|^Killed$|\bOOMKilled\b|\b[Oo]ut of memory\b|\bheap out of memory\b/],
  ['exit_code', /\b[Ee]xit(?:ed with)? code:? ?[1-9]\d*\b|\b[Ee]xit status [1-9]\d*\b|\breturned a non-zero code\b|\bnon-zero exit (?:code|status)\b|\*\*\* \[[^\]]*\] Error \d+/],
  ['error', /^\s*(?:error|ERROR|Error)\b[\s:[(!]|^\[(?:ERROR|FATAL)\]|^E {3}\S|\bBUILD (?:FAILED|FAILURE)\b|\bError: |\bException in thread\b|\bUnhandled (?:exception|rejection)\b/]
]

/** Lines that mention errors only to say there were none. */
const NOT_AN_ERROR = /\b0 (?:errors?|failures?|failed|failing)\b|\bno errors?\b|\berrors?: 0\b|\bwithout errors?\b|-Werror\b|\bFailures: 0, Errors: 0\b/

/**
 * A cheap first test: a line that contains none of these words or marks cannot match any rule (checked in
 * test/core/error-lines.test.ts), so the rules run only on the few lines that do.
 */
const CANDIDATE = /rror|RROR|FAIL|fail|Fail|not ok|ERR|TS\d|undefined|Undefined|\bld\b|collect2|linker|unresolved|Traceback|Exception|Exit|Interrupt|FATAL|fatal|panic|Segmentation|dumped|Killed|memory|exit|non-zero|\.go:|Found \d|Compilation|compilation|E {3}|Unhandled/

/**
 * Literals one of which every rule's match contains (a superset of CANDIDATE's cases, found with one pass of a
 * literal-only pattern over a whole chunk of the log, which is several times faster than testing line by line).
 */
export const CANDIDATE_LITERALS = /rror|RROR|FAIL|fail|Fail|not ok|ERR|ndefined|collect2|linker|unresolved|Traceback|Exception|Exit|Interrupt|FATAL|fatal|panic|Segmentation|dumped|Killed|memory|exit|non-zero|Found |ompilation|Unhandled|\.go:|ld: |E {3}/g

/** False when the stored line (prefix, escapes and all) cannot be an error line: the scan's first, cheap test. */
export const mayBeError = (raw: string): boolean => CANDIDATE.test(raw)

/** The kind of error `line` (already displayed: see displayLine) names, or null for an ordinary line. */
export function classifyLine (line: string): ErrorKind | null {
  if (!CANDIDATE.test(line) || NOT_AN_ERROR.test(line)) return null
  for (const [kind, rule] of RULES) if (rule.test(line)) return kind
  return null
}
