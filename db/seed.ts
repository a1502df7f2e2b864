// Demo data for the embedded mode and the shared test fixture: fixed ids, every build status, both log stores, artifacts.
import type { Kysely } from 'kysely'
import type { Database } from './schema.js'
import { at, fixedId, jobsFor, shaOf, writeArtifact, type SeedOptions } from './seed-kit.js'
import { seedStory } from './seed-story.js'

export type { SeedOptions }

export const FIXTURE = {
  users: {
    demo: fixedId(1, 1),
    /** Owns the public project; collaborates on nothing of the demo user's. */
    outsider: fixedId(1, 2)
  },
  projects: {
    github: fixedId(2, 1),
    upload: fixedId(2, 2),
    /** An upload project that never received an upload: trigger is 409. */
    uploadEmpty: fixedId(2, 3),
    gerrit: fixedId(2, 4),
    test: fixedId(2, 5),
    /** Public, owned by the outsider; the demo user is not a collaborator. */
    public: fixedId(2, 6)
  },
  repositories: {
    github: fixedId(3, 1),
    gerrit: fixedId(3, 4),
    test: fixedId(3, 5),
    public: fixedId(3, 6)
  },
  commits: {
    main1: shaOf('main-1'),
    main2: shaOf('main-2'),
    main3: shaOf('main-3'),
    login1: shaOf('feature/login-1'),
    login2: shaOf('feature/login-2'),
    release1: shaOf('release/1.0-1'),
    gerritMaster: shaOf('gerrit-master-1'),
    testMaster: shaOf('test-master-1')
  },
  sourceUploads: {
    upload: fixedId(4, 1)
  },
  /** Builds of the github project unless named otherwise; the comment is the status the fixture gives it. */
  builds: {
    b1: fixedId(5, 1), // #1 main: finished
    b2: fixedId(5, 2), // #2 feature/login: failure (beats error)
    b3: fixedId(5, 3), // #3 main: error (beats killed)
    b4: fixedId(5, 4), // #4 main: killed (beats unstable)
    b5: fixedId(5, 5), // #5 release/1.0: unstable (skipped counts as done)
    b6: fixedId(5, 6), // #6.1 main: failure
    b6restart: fixedId(5, 7), // #6.2 main: finished
    b7: fixedId(5, 8), // #7 feature/login: running
    b8: fixedId(5, 9), // #8 main: running (beats failure)
    upload1: fixedId(5, 101), // upload project #1: finished
    public1: fixedId(5, 201) // public project #1: finished
  },
  jobs: {
    b1Create: fixedId(6, 0x0100),
    /** Finished; its log is in job.console; has test runs and two artifacts. */
    compile: fixedId(6, 0x0101),
    /** Finished long ago; job.console = 'deleted'. */
    legacy: fixedId(6, 0x0102),
    b2Create: fixedId(6, 0x0200),
    b2Unit: fixedId(6, 0x0201),
    b2Lint: fixedId(6, 0x0202),
    b2E2e: fixedId(6, 0x0203),
    b3Create: fixedId(6, 0x0300),
    b3A: fixedId(6, 0x0301),
    b3B: fixedId(6, 0x0302),
    b4Create: fixedId(6, 0x0400),
    b4A: fixedId(6, 0x0401),
    b4B: fixedId(6, 0x0402),
    b5Create: fixedId(6, 0x0500),
    b5A: fixedId(6, 0x0501),
    b5B: fixedId(6, 0x0502),
    b6Create: fixedId(6, 0x0600),
    b6A: fixedId(6, 0x0601),
    b6rCreate: fixedId(6, 0x0700),
    b6rA: fixedId(6, 0x0701),
    b7Create: fixedId(6, 0x0800),
    b7Unit: fixedId(6, 0x0801),
    /** Running; its log exists only as console rows (inserted out of date order). */
    deploy: fixedId(6, 0x0802),
    b8Create: fixedId(6, 0x0900),
    b8A: fixedId(6, 0x0901),
    b8B: fixedId(6, 0x0902),
    b8C: fixedId(6, 0x0903),
    uploadCreate: fixedId(6, 0x6500),
    uploadRun: fixedId(6, 0x6501),
    publicCreate: fixedId(6, 0xc900),
    publicRun: fixedId(6, 0xc901)
  },
  testRuns: {
    ok: fixedId(7, 1),
    failure: fixedId(7, 2),
    error: fixedId(7, 3),
    skipped: fixedId(7, 4),
    noSuite: fixedId(7, 5)
  }
} as const

export type Fixture = typeof FIXTURE

export const COMPILE_LOG =
  '10:00:00|Step 1/3: FROM node:20\n' +
  '10:00:01|Step 2/3: RUN npm ci — größe ✓\n' +
  '10:00:02|Step 3/3: RUN npm test 🚀\n' +
  '10:00:03|Build finished\n'

/** The deploy job's console rows in insertion order; by date the third comes second. */
export const DEPLOY_ROWS = [
  { id: fixedId(8, 1), date: '2024-01-01T07:00:01Z', output: '07:00:01|Deploying ✓\n' },
  { id: fixedId(8, 2), date: '2024-01-01T07:00:03Z', output: '07:00:03|Step 2 — done\n' },
  { id: fixedId(8, 3), date: '2024-01-01T07:00:02Z', output: '07:00:02|Step 1: größe 🚀\n' }
] as const
/** The deploy log as readers must see it: rows by date. */
export const DEPLOY_LOG = [DEPLOY_ROWS[0], DEPLOY_ROWS[2], DEPLOY_ROWS[1]].map(r => r.output).join('')

export const ARTIFACT_TEXT = 'coverage: 87.5%\nall suites passed but one\n'
/** Every byte value twice: not valid UTF-8, so any text conversion on the way would show. */
export const ARTIFACT_BINARY = Buffer.from(Array.from({ length: 512 }, (_, i) => i % 256))
export const ARTIFACTS = {
  text: { filename: 'report.txt', content: Buffer.from(ARTIFACT_TEXT, 'utf8') },
  binary: { filename: 'coverage.bin', content: ARTIFACT_BINARY },
  public: { filename: 'public.txt', content: Buffer.from('public artifact\n', 'utf8') }
} as const

/**
 * Inserts the fixture (see FIXTURE for what each id is) and, with `artifactRoot`, writes the artifact
 * files. Fixed ids: once per database. Returns the ids.
 */
export async function seedFixture (db: Kysely<Database>, opts: SeedOptions = {}): Promise<Fixture> {
  const { users, projects: p, repositories: r, commits: c, builds: b, jobs: j } = FIXTURE

  await db.insertInto('user').values([
    { id: users.demo, username: 'demo', name: 'Demo User', email: 'demo@infrabox.local' },
    { id: users.outsider, username: 'outsider', name: 'Someone Else', email: 'outsider@infrabox.local' }
  ]).execute()

  await db.insertInto('project').values([
    { id: p.github, name: 'demo-github', type: 'github' },
    { id: p.upload, name: 'demo-upload', type: 'upload' },
    { id: p.uploadEmpty, name: 'demo-upload-empty', type: 'upload' },
    { id: p.gerrit, name: 'demo-gerrit', type: 'gerrit' },
    { id: p.test, name: 'demo-test', type: 'test' },
    { id: p.public, name: 'public-elsewhere', type: 'github', public: true }
  ]).execute()

  await db.insertInto('collaborator').values([
    { user_id: users.demo, project_id: p.github, role: 'Owner' },
    { user_id: users.demo, project_id: p.upload, role: 'Developer' },
    { user_id: users.demo, project_id: p.uploadEmpty, role: 'Developer' },
    { user_id: users.demo, project_id: p.gerrit, role: 'Administrator' },
    { user_id: users.demo, project_id: p.test, role: 'Developer' },
    { user_id: users.outsider, project_id: p.public, role: 'Owner' }
  ]).execute()

  await db.insertInto('repository').values([
    { id: r.github, name: 'demo-github', html_url: 'https://github.com/demo/demo-github', clone_url: 'https://github.com/demo/demo-github.git', github_owner: 'demo', project_id: p.github, private: true },
    { id: r.gerrit, name: 'demo-gerrit', html_url: '', clone_url: 'ssh://infrabox@gerrit.example.com:29418/demo-gerrit', github_id: 0, project_id: p.gerrit, private: false },
    { id: r.test, name: 'demo-test', clone_url: 'https://git.example.com/demo/test.git', project_id: p.test, private: false },
    { id: r.public, name: 'public-elsewhere', html_url: 'https://github.com/else/public', clone_url: 'https://github.com/else/public.git', github_owner: 'else', project_id: p.public, private: false }
  ]).execute()

  const commit = (sha: string, repositoryId: string, projectId: string, branch: string, hour: number, message: string) => ({
    id: sha,
    message,
    repository_id: repositoryId,
    timestamp: at(hour),
    author_name: 'Demo User',
    author_email: 'demo@infrabox.local',
    committer_name: 'Demo User',
    committer_email: 'demo@infrabox.local',
    url: `https://git.example.com/commit/${sha}`,
    branch,
    project_id: projectId
  })
  await db.insertInto('commit').values([
    commit(c.main1, r.github, p.github, 'main', 0, 'Initial import'),
    commit(c.main2, r.github, p.github, 'main', 2, 'Add the API'),
    commit(c.main3, r.github, p.github, 'main', 5, 'Fix the flaky test'),
    commit(c.login1, r.github, p.github, 'feature/login', 1, 'Login form'),
    commit(c.login2, r.github, p.github, 'feature/login', 6, 'Login: remember me'),
    commit(c.release1, r.github, p.github, 'release/1.0', 4, 'Release 1.0'),
    commit(c.gerritMaster, r.gerrit, p.gerrit, 'master', 3, 'Gerrit change'),
    commit(c.testMaster, r.test, p.test, 'master', 3, 'Test project commit'),
    // The same sha in another project, on another branch: a join on the sha alone would mix them up.
    commit(c.main1, r.public, p.public, 'elsewhere', 0, 'Same sha, other project')
  ]).execute()

  await db.insertInto('source_upload').values({ id: FIXTURE.sourceUploads.upload, project_id: p.upload, filename: 'project.zip', filesize: 1234 }).execute()

  const gitBuild = (id: string, number: number, sha: string, restart = 1) =>
    ({ id, build_number: number, restart_counter: restart, commit_id: sha, project_id: p.github, source: 'github' })
  await db.insertInto('build').values([
    gitBuild(b.b1, 1, c.main1),
    gitBuild(b.b2, 2, c.login1),
    gitBuild(b.b3, 3, c.main2),
    gitBuild(b.b4, 4, c.main2),
    gitBuild(b.b5, 5, c.release1),
    gitBuild(b.b6, 6, c.main3),
    gitBuild(b.b6restart, 6, c.main3, 2),
    gitBuild(b.b7, 7, c.login2),
    gitBuild(b.b8, 8, c.main3),
    { id: b.upload1, build_number: 1, project_id: p.upload, source_upload_id: FIXTURE.sourceUploads.upload, source: 'upload' },
    { id: b.public1, build_number: 1, project_id: p.public, commit_id: c.main1, source: 'github' }
  ]).execute()

  const text = ARTIFACTS.text
  const binary = ARTIFACTS.binary
  await db.insertInto('job').values([
    ...jobsFor(p.github, b.b1, 0, j.b1Create, [
      { id: j.compile, name: 'compile', state: 'finished', console: COMPILE_LOG, archive: [{ filename: text.filename, size: text.content.length }, { filename: binary.filename, size: binary.content.length }] },
      { id: j.legacy, name: 'legacy', state: 'finished', console: 'deleted' }
    ]),
    ...jobsFor(p.github, b.b2, 1, j.b2Create, [
      { id: j.b2Unit, name: 'unit', state: 'finished', console: 'unit ok\n' },
      { id: j.b2Lint, name: 'lint', state: 'failure', message: 'lint found 3 problems', console: 'lint: 3 problems\n' },
      { id: j.b2E2e, name: 'e2e', state: 'error', type: 'run_docker_compose', message: 'docker-compose failed to start' }
    ]),
    ...jobsFor(p.github, b.b3, 2, j.b3Create, [
      { id: j.b3A, name: 'a', state: 'error' },
      { id: j.b3B, name: 'b', state: 'killed' }
    ]),
    ...jobsFor(p.github, b.b4, 3, j.b4Create, [
      { id: j.b4A, name: 'a', state: 'killed' },
      { id: j.b4B, name: 'b', state: 'unstable' }
    ]),
    ...jobsFor(p.github, b.b5, 4, j.b5Create, [
      { id: j.b5A, name: 'a', state: 'unstable' },
      { id: j.b5B, name: 'b', state: 'skipped' }
    ]),
    ...jobsFor(p.github, b.b6, 5, j.b6Create, [{ id: j.b6A, name: 'a', state: 'failure' }]),
    ...jobsFor(p.github, b.b6restart, 6, j.b6rCreate, [{ id: j.b6rA, name: 'a', state: 'finished' }]),
    ...jobsFor(p.github, b.b7, 7, j.b7Create, [
      { id: j.b7Unit, name: 'unit', state: 'finished', console: 'unit ok\n' },
      { id: j.deploy, name: 'deploy', state: 'running' }
    ]),
    ...jobsFor(p.github, b.b8, 8, j.b8Create, [
      { id: j.b8A, name: 'a', state: 'failure' },
      { id: j.b8B, name: 'b', state: 'queued' },
      { id: j.b8C, name: 'c', state: 'scheduled' }
    ]),
    ...jobsFor(p.upload, b.upload1, 0, j.uploadCreate, [{ id: j.uploadRun, name: 'run', state: 'finished', console: 'uploaded project built\n' }]),
    ...jobsFor(p.public, b.public1, 0, j.publicCreate, [
      { id: j.publicRun, name: 'run', state: 'finished', console: 'public log\n', archive: [{ filename: ARTIFACTS.public.filename, size: ARTIFACTS.public.content.length }] }
    ])
  ]).execute()

  await db.insertInto('console').values(DEPLOY_ROWS.map(row => ({ id: row.id, job_id: j.deploy, date: row.date, output: row.output }))).execute()

  const t = FIXTURE.testRuns
  const run = (id: string, suite: string | null, name: string, state: 'ok' | 'failure' | 'error' | 'skipped', extra: { message?: string, stack?: string } = {}) => ({
    id, job_id: j.compile, project_id: p.github, suite, name, state, duration: 0.25, timestamp: at(0, 5), message: extra.message ?? null, stack: extra.stack ?? null
  })
  await db.insertInto('test_run').values([
    run(t.ok, 'api', 'lists projects', 'ok'),
    run(t.failure, 'api', 'pages builds', 'failure', { message: 'expected 3, got 2', stack: 'at builds.test.ts:10:5' }),
    run(t.error, 'db', 'connects', 'error', { message: 'ECONNREFUSED', stack: 'at connect (db.ts:1:1)' }),
    run(t.skipped, 'ui', 'renders', 'skipped'),
    run(t.noSuite, null, 'orphan', 'ok')
  ]).execute()

  if (opts.artifactRoot !== undefined) {
    await writeArtifact(opts.artifactRoot, j.compile, text.filename, text.content)
    await writeArtifact(opts.artifactRoot, j.compile, binary.filename, binary.content)
    await writeArtifact(opts.artifactRoot, j.publicRun, ARTIFACTS.public.filename, ARTIFACTS.public.content)
  }
  return FIXTURE
}

/**
 * Seeds the demo data unless the demo user already exists (idempotent: safe on every start).
 * One transaction, so a crash half-way leaves nothing to confuse the next start.
 */
export async function seedDemo (db: Kysely<Database>, opts: SeedOptions = {}): Promise<{ seeded: boolean }> {
  const existing = await db.selectFrom('user').select('user.id')
    .where(eb => eb.or([eb('user.id', '=', FIXTURE.users.demo), eb('user.email', '=', 'demo@infrabox.local')]))
    .executeTakeFirst()
  if (existing !== undefined) return { seeded: false }
  await db.transaction().execute(async trx => {
    await seedFixture(trx, opts)
    await seedStory(trx, { ...opts, ownerId: FIXTURE.users.demo })
  })
  return { seeded: true }
}
