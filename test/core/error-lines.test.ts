// The failure summary's error-line heuristic: each kind it names, InfraBox's prefixes and ANSI handled, lines that only look like errors left alone.
import t from 'tap'
import { CANDIDATE_LITERALS, classifyLine, displayLine, mayBeError, type ErrorKind } from '../../core/error-lines.js'
import { STORY_COMPILE_LOG, STORY_TEST_LOG } from '../../db/seed-story.js'

const kindOf = (stored: string): ErrorKind | null => mayBeError(stored) ? classifyLine(displayLine(stored)) : null

t.test('displayLine drops the HH:MM:SS| prefix, ANSI and control characters', async t => {
  t.equal(displayLine('12:00:29|\u001b[91merror\u001b[0m TS2322: x\r'), 'error TS2322: x')
  t.equal(displayLine('not a prefix|12:00:00'), 'not a prefix|12:00:00')
  t.equal(displayLine('1:2:3|x'), '1:2:3|x')
  t.equal(displayLine('\u202eevil\u0007'), 'evil')
})

const CASES: Array<[ErrorKind, string]> = [
  ['compiler', "src/cart/total.ts:42:7 - error TS2322: Type 'string' is not assignable to type 'number'."],
  ['compiler', 'main.c:12:5: error: expected \';\' before \'}\' token'],
  ['compiler', 'error[E0308]: mismatched types'],
  ['compiler', 'Program.cs(10,5): error CS1002: ; expected'],
  ['compiler', './main.go:5:2: undefined: fmt.Printn'],
  ['compiler', 'Found 2 errors in the same file'],
  ['compiler', 'src/App.java:7: error: cannot find symbol'],
  ['linker', 'main.o: in function `main\': undefined reference to `foo\''],
  ['linker', 'collect2: error: ld returned 1 exit status'],
  ['linker', 'Undefined symbols for architecture arm64:'],
  ['test', 'FAIL src/cart.test.ts'],
  ['test', '--- FAIL: TestTotal (0.00s)'],
  ['test', 'FAILED tests/test_cart.py::test_total - assert 1 == 2'],
  ['test', '==================== 2 failed, 10 passed in 0.52s ===================='],
  ['test', 'not ok 3 - adds an item'],
  ['test', '  3 failing'],
  ['test', 'Tests run: 12, Failures: 2, Errors: 0, Skipped: 0'],
  ['test', '     AssertionError: expected 9000 to equal 10000'],
  ['traceback', 'Traceback (most recent call last):'],
  ['traceback', 'ValueError: invalid literal for int() with base 10: \'x\''],
  ['traceback', 'requests.exceptions.ConnectionError: HTTPSConnectionPool'],
  ['npm', 'npm ERR! code ELIFECYCLE'],
  ['npm', 'npm error code 1'],
  ['npm', ' ERR_PNPM_RECURSIVE_RUN_FIRST_FAIL  shop@1.0.0 test: `vitest`'],
  ['fatal', 'FATAL: database "shop" does not exist'],
  ['fatal', 'fatal: could not read Username for \'https://github.com\''],
  ['fatal', 'panic: runtime error: index out of range [3] with length 3'],
  ['fatal', 'Segmentation fault (core dumped)'],
  ['fatal', 'FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory'],
  ['exit_code', "The command '/bin/sh -c npm run build' returned a non-zero code: 2"],
  ['exit_code', 'Process completed with exit code 1.'],
  ['exit_code', 'container exited with code 137'],
  ['exit_code', 'make: *** [Makefile:12: build] Error 2'],
  ['error', 'ERROR: Could not find a version that satisfies the requirement shop==9'],
  ['error', '[ERROR] Failed to execute goal org.apache.maven.plugins'],
  ['error', 'E   assert 100 == 90'],
  ['error', 'BUILD FAILED in 12s'],
  ['error', 'Error: Cannot find module \'express\'']
]

t.test('each kind the heuristic names (with and without InfraBox\'s prefix and colours)', async t => {
  for (const [kind, line] of CASES) {
    t.equal(kindOf(line), kind, line)
    t.equal(kindOf(`12:34:56|\u001b[31m${line}\u001b[0m`), kind, `prefixed and coloured: ${line}`)
  }
})

t.test('ordinary lines and lines that report the absence of errors are not error lines', async t => {
  for (const line of [
    'npm http fetch GET 200 https://registry.npmjs.org/@shop/dependency-0001/-/dependency-1.tgz 5ms (cache hit)',
    'Step 3/4 : RUN npm run build',
    'Found 0 errors. Watching for file changes.',
    'Tests run: 12, Failures: 0, Errors: 0, Skipped: 0',
    '  601 passing (4s)',
    'compiled without errors',
    'gcc -Wall -Werror -o main main.c',
    'src/errors.ts compiled',
    'exit code 0',
    'Successfully built 5c1b0e2d',
    '0 failed, 12 passed',
    '    ✓ adds an item'
  ]) t.equal(kindOf(line), null, line)
})

t.test('the story\'s logs: the compile error, npm\'s epilogue and the test failures are found, the noise is not', async t => {
  const found = (log: string): Array<[number, ErrorKind]> => log.split('\n').flatMap((line, i) => {
    const kind = kindOf(line)
    return kind === null ? [] : [[i + 1, kind] as [number, ErrorKind]]
  })
  const compile = found(STORY_COMPILE_LOG)
  const lines = STORY_COMPILE_LOG.split('\n')
  t.same(compile.map(([n]) => displayLine(lines[n - 1] ?? '')).map(l => l.slice(0, 30)), [
    'src/cart/total.ts:42:7 - error',
    'Found 1 error in src/cart/tota',
    'npm ERR! code 2',
    'npm ERR! Lifecycle script `bui',
    "The command '/bin/sh -c npm ru"
  ])
  t.equal(compile[0]?.[1], 'compiler')
  const test = found(STORY_TEST_LOG).map(([, kind]) => kind)
  t.ok(test.filter(k => k === 'test').length >= 2, 'the failing count, the assertion')
  t.notOk(found(STORY_TEST_LOG.split('\n').filter(l => l.includes('✓')).join('\n')).length, 'passing tests are not errors')
})

t.test('the candidate tests never reject a line a rule matches (the per-line one and the chunk-wide literals)', async t => {
  for (const [, line] of CASES) {
    t.ok(mayBeError(line), line)
    CANDIDATE_LITERALS.lastIndex = 0
    t.ok(CANDIDATE_LITERALS.test(`12:00:00|${line}`), `literals: ${line}`)
  }
})
