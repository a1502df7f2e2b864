// The demo's story for the agent tools (SPEC §11): a green branch, then a failing build with a compile error and a new, a known and a flaky failing test, and a build still running.
import type { Kysely } from 'kysely'
import type { Database, TestResult } from './schema.js'
import { at, fixedId, jobsFor, shaOf, writeArtifact, type JobSpec, type SeedOptions } from './seed-kit.js'

/** Build numbers of the story's branch `main`, oldest first, and the status each ends with. */
const HISTORY = [
  { n: 1, status: 'finished' },
  { n: 2, status: 'unstable' }, // the flaky search test failed once
  { n: 3, status: 'finished' },
  { n: 4, status: 'finished' }, // the last green build
  { n: 5, status: 'failure' }, // refunds starts failing (and search flips again)
  { n: 6, status: 'failure' }, // THE build: a compile error, and new, known and flaky failing tests
  { n: 7, status: 'running' }
] as const

const id = (kind: number, n: number): string => fixedId(0x20 + kind, n)
const sha = (n: number): string => shaOf(`story-main-${n}`)
const TEST_KEYS = ['new', 'known', 'flaky', 'stable'] as const

export const STORY = {
  project: id(0, 1),
  repository: id(1, 1),
  branch: 'main',
  builds: { 1: id(2, 1), 2: id(2, 2), 3: id(2, 3), 4: id(2, 4), 5: id(2, 5), 6: id(2, 6), 7: id(2, 7) },
  /** the failing build the story is about (#6) and the last green one before it (#4) */
  failing: id(2, 6),
  lastGreen: id(2, 4),
  running: id(2, 7),
  jobs: {
    /** #6's compile job: failure, a TypeScript error in its log */
    compile: id(3, 0x0601),
    /** #6's test job: failure, three failing tests */
    test: id(3, 0x0602),
    /** #7's compile job, still running (its log is console rows) */
    runningCompile: id(3, 0x0701)
  },
  commits: { 1: sha(1), 2: sha(2), 3: sha(3), 4: sha(4), 5: sha(5), 6: sha(6), 7: sha(7) },
  tests: {
    /** fails for the first time in #6 */
    new: { suite: 'checkout', name: 'applies the discount code' },
    /** failed in #5 already */
    known: { suite: 'payment', name: 'refunds a cancelled order' },
    /** ok, failure, ok, ok, failure, failure: changed outcome three times */
    flaky: { suite: 'search', name: 'ranks exact matches first' },
    /** passes every time */
    stable: { suite: 'cart', name: 'adds an item' }
  }
} as const

const COMMIT_MESSAGES: Record<number, string> = {
  1: 'Shop: cart and checkout',
  2: 'Search: rank by relevance',
  3: 'Payment: refunds',
  4: 'Checkout: discount codes',
  5: 'Payment: retry refunds through the new gateway client',
  6: 'Cart: keep totals in cents',
  7: 'Cart: format cents in the UI'
}

/** Outcomes per build number of each test (absent: the test job did not run, e.g. the running build). */
const OUTCOMES: Record<keyof typeof STORY.tests, Record<number, TestResult>> = {
  new: { 1: 'ok', 2: 'ok', 3: 'ok', 4: 'ok', 5: 'ok', 6: 'failure' },
  known: { 1: 'ok', 2: 'ok', 3: 'ok', 4: 'ok', 5: 'failure', 6: 'failure' },
  flaky: { 1: 'ok', 2: 'failure', 3: 'ok', 4: 'ok', 5: 'failure', 6: 'failure' },
  stable: { 1: 'ok', 2: 'ok', 3: 'ok', 4: 'ok', 5: 'ok', 6: 'ok' }
}

const MESSAGES: Record<keyof typeof STORY.tests, { message: string, stack: string }> = {
  new: { message: 'expected total 90.00 after "SAVE10", got 100.00', stack: 'AssertionError: expected 9000 to equal 10000\n    at Context.<anonymous> (test/checkout.test.ts:57:28)\n    at processImmediate (node:internal/timers:483:21)' },
  known: { message: 'refund was not issued: gateway answered 502', stack: 'Error: refund was not issued: gateway answered 502\n    at refund (src/payment/refund.ts:31:11)\n    at Context.<anonymous> (test/payment.test.ts:88:5)' },
  flaky: { message: 'timeout of 2000ms exceeded', stack: 'Error: Timeout of 2000ms exceeded.\n    at listOnTimeout (node:internal/timers:581:17)' },
  stable: { message: '', stack: '' }
}

/** What real CI logs are mostly made of: 1 500 lines (about 120 KiB) of package fetches before anything goes wrong. */
const NPM_NOISE = Array.from({ length: 1500 }, (_, i) =>
  `12:00:${String(2 + Math.floor(i / 100)).padStart(2, '0')}|npm http fetch GET 200 https://registry.npmjs.org/@shop/dependency-${String(i).padStart(4, '0')}/-/dependency-${i}.tgz ${5 + (i % 40)}ms (cache hit)`)

/** 600 passing tests before the failures, as a test runner prints them. */
const PASSING_TESTS = Array.from({ length: 600 }, (_, i) => `12:01:0${1 + Math.floor(i / 200)}|    \u001b[32m✓\u001b[0m case ${i + 1} of the catalogue behaves (${1 + (i % 9)}ms)`)

/** The compile job's log in #6: InfraBox's HH:MM:SS| prefixes, colours, a TypeScript error, npm's epilogue. */
export const STORY_COMPILE_LOG = [
  '12:00:01|Step 1/4 : FROM node:20',
  '12:00:02|Step 2/4 : RUN npm ci',
  ...NPM_NOISE,
  '12:00:19|added 812 packages in 17s',
  '12:00:20|Step 3/4 : RUN npm run build',
  '12:00:21|> shop@2.3.0 build',
  '12:00:21|> tsc -p tsconfig.build.json',
  "12:00:29|\u001b[96msrc/cart/total.ts\u001b[0m:\u001b[93m42\u001b[0m:\u001b[93m7\u001b[0m - \u001b[91merror\u001b[0m\u001b[90m TS2322: \u001b[0mType 'string' is not assignable to type 'number'.",
  '12:00:29|',
  '12:00:29|42       total: formatCents(sum),',
  '12:00:29|         ~~~~~',
  '12:00:29|',
  '12:00:29|Found 1 error in src/cart/total.ts:42',
  '12:00:30|npm ERR! code 2',
  '12:00:30|npm ERR! Lifecycle script `build` failed with error: tsc -p tsconfig.build.json',
  "12:00:30|The command '/bin/sh -c npm run build' returned a non-zero code: 2",
  ''
].join('\n')

/** The test job's log in #6: mocha-like output with the three failures. */
export const STORY_TEST_LOG = [
  '12:01:01|> shop@2.3.0 test',
  '12:01:01|  catalogue',
  ...PASSING_TESTS,
  '12:01:02|  cart',
  '12:01:02|    \u001b[32m✓\u001b[0m adds an item',
  '12:01:03|  checkout',
  '12:01:03|    \u001b[31m1) applies the discount code\u001b[0m',
  '12:01:04|  payment',
  '12:01:04|    \u001b[31m2) refunds a cancelled order\u001b[0m',
  '12:01:06|  search',
  '12:01:06|    \u001b[31m3) ranks exact matches first\u001b[0m',
  '12:01:06|  601 passing (4s)',
  '12:01:06|  3 failing',
  '12:01:06|  1) checkout applies the discount code:',
  '12:01:06|     AssertionError: expected 9000 to equal 10000',
  '12:01:06|  2) payment refunds a cancelled order:',
  '12:01:06|     Error: refund was not issued: gateway answered 502',
  '12:01:06|  3) search ranks exact matches first:',
  '12:01:06|     Error: Timeout of 2000ms exceeded.',
  '12:01:07|npm ERR! Test failed.  See above for more details.',
  ''
].join('\n')

const GREEN_LOG = '12:00:01|Step 1/4 : FROM node:20\n12:00:30|Successfully built 5c1b0e2d\n'

/**
 * Inserts the story (a project owned by `ownerId`, the fixture's demo user in the demo, see STORY). Fixed ids: once per database.
 * With `artifactRoot`, #6's test job also gets its JUnit report as an artifact.
 */
export async function seedStory (db: Kysely<Database>, opts: SeedOptions & { ownerId: string }): Promise<typeof STORY> {
  const S = STORY
  await db.insertInto('project').values({ id: S.project, name: 'demo-shop', type: 'github' }).execute()
  await db.insertInto('collaborator').values({ user_id: opts.ownerId, project_id: S.project, role: 'Owner' }).execute()
  await db.insertInto('repository').values({ id: S.repository, name: 'demo-shop', html_url: 'https://github.com/demo/shop', clone_url: 'https://github.com/demo/shop.git', github_owner: 'demo', project_id: S.project, private: true }).execute()
  // the story happens a day after the fixture's builds
  const hourOf = (n: number): number => 24 + n * 2
  await db.insertInto('commit').values(HISTORY.map(h => ({
    id: S.commits[h.n],
    message: COMMIT_MESSAGES[h.n] ?? '',
    repository_id: S.repository,
    timestamp: at(hourOf(h.n) - 1),
    author_name: 'Demo User',
    author_email: 'demo@infrabox.local',
    committer_name: 'Demo User',
    committer_email: 'demo@infrabox.local',
    url: `https://github.com/demo/shop/commit/${S.commits[h.n]}`,
    branch: S.branch,
    project_id: S.project
  }))).execute()
  await db.insertInto('build').values(HISTORY.map(h => ({ id: S.builds[h.n], build_number: h.n, restart_counter: 1, commit_id: S.commits[h.n], project_id: S.project, source: 'github' }))).execute()

  const report = '<?xml version="1.0"?>\n<testsuites tests="4" failures="3">\n  <testsuite name="checkout"><testcase name="applies the discount code"><failure message="expected total 90.00 after &quot;SAVE10&quot;, got 100.00"/></testcase></testsuite>\n</testsuites>\n'
  for (const h of HISTORY) {
    const compileId = h.n === 6 ? S.jobs.compile : h.n === 7 ? S.jobs.runningCompile : id(3, h.n * 0x100 + 1)
    const testId = h.n === 6 ? S.jobs.test : id(3, h.n * 0x100 + 2)
    const specs: JobSpec[] = h.n === 7
      ? [{ id: compileId, name: 'build/compile', state: 'running' }, { id: testId, name: 'test/unit', state: 'queued' }]
      : [
          h.n === 6
            ? { id: compileId, name: 'build/compile', state: 'failure', message: 'container exited with code 2', console: STORY_COMPILE_LOG }
            : { id: compileId, name: 'build/compile', state: 'finished', console: GREEN_LOG },
          h.n === 6
            ? { id: testId, name: 'test/unit', state: 'failure', console: STORY_TEST_LOG, archive: [{ filename: 'junit.xml', size: Buffer.byteLength(report) }] }
            : { id: testId, name: 'test/unit', state: h.status === 'finished' ? 'finished' : h.status === 'unstable' ? 'unstable' : 'failure', console: '12:01:01|> shop@2.3.0 test\n' }
        ]
    await db.insertInto('job').values(jobsFor(S.project, S.builds[h.n], hourOf(h.n), id(3, h.n * 0x100), specs)).execute()
    if (h.n === 7) continue
    await db.insertInto('test_run').values(TEST_KEYS.map((which, i) => {
      const state = OUTCOMES[which][h.n] ?? 'ok'
      const failed = state !== 'ok'
      return {
        id: id(4, h.n * 0x10 + i),
        job_id: testId,
        project_id: S.project,
        suite: S.tests[which].suite,
        name: S.tests[which].name,
        state,
        duration: 0.05 + i * 0.3,
        timestamp: at(hourOf(h.n), 5),
        message: failed ? MESSAGES[which].message : null,
        stack: failed ? MESSAGES[which].stack : null
      }
    })).execute()
  }
  // the running build's log so far, as InfraBox keeps it while a job runs: console rows
  await db.insertInto('console').values([
    { id: id(5, 1), job_id: S.jobs.runningCompile, date: at(hourOf(7), 3), output: '12:00:01|Step 1/4 : FROM node:20\n' },
    { id: id(5, 2), job_id: S.jobs.runningCompile, date: at(hourOf(7), 4), output: '12:00:02|Step 2/4 : RUN npm ci\n' }
  ]).execute()
  if (opts.artifactRoot !== undefined) await writeArtifact(opts.artifactRoot, S.jobs.test, 'junit.xml', Buffer.from(report))
  return STORY
}
