// Seeds a fresh PostgreSQL database with a realistic InfraBox dataset for the benchmark, set-based (generate_series), in seconds.
//
//   node dist/bench/seed.js [--scale 1|5|…] [--revoked-tokens N] [--keep] [--database-url postgres://…/postgres]
//
// Scale 1: 50 projects, 20 000 builds, ~100 000 jobs, 100 users (each a collaborator on several projects),
// 100 MCP tokens (one per user, scope {}), commits with branches. Every count grows linearly with the scale.
// The database is created under a fresh name and dropped at the end unless --keep (then its URL and the
// tokens are printed as JSON, and can be handed to run.ts with --database-url / --tokens-file).
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { pathToFileURL } from 'node:url'
import pg from 'pg'
import { kyselyWithOwnPool } from '../db/connect.js'
import { applyInfraboxSubset, migrateGateway } from '../db/migrate.js'
import { mintToken } from '../core/token.js'

export const DEFAULT_ADMIN_URL = process.env.BENCH_ADMIN_URL ?? process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

export interface SeedSizes {
  projects: number
  users: number
  /** build rows, restarts included */
  builds: number
  /** average jobs per build (jobs ≈ builds × this) */
  jobsPerBuild: number
}

export const sizesFor = (scale: number): SeedSizes => ({
  projects: Math.round(50 * scale),
  users: Math.round(100 * scale),
  builds: Math.round(20_000 * scale),
  jobsPerBuild: 5
})

export interface BenchToken {
  token: string
  tokenId: string
  userId: string
}

export interface SeededDatabase {
  name: string
  url: string
  scale: number
  sizes: SeedSizes
  /** what was actually inserted */
  counts: Record<string, number>
  tokens: BenchToken[]
  /** (token index, project id) pairs the token may read: its owner collaborates on the project */
  pairs: Array<{ token: number, projectId: string }>
  seedMs: number
  drop: () => Promise<void>
}

function urlFor (adminUrl: string, name: string): string {
  const u = new URL(adminUrl)
  u.pathname = `/${name}`
  return u.toString()
}

async function withClient<T> (url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try { return await fn(c) } finally { await c.end() }
}

/** The dataset, as SQL run in one session (setseed makes it the same every time). */
function datasetSql (s: SeedSizes): string[] {
  // build numbers before restarts: ~5 % of them get a second run (restart_counter 2)
  const buildNumbers = Math.round(s.builds / 1.05)
  // jobs per build: 1 "Create Jobs" + 1..(2·(jobsPerBuild-1)-1) others, so the mean is jobsPerBuild
  const maxExtra = 2 * (s.jobsPerBuild - 1) - 1
  return [
    'SELECT setseed(0.42)',
    // -------------------------------------------------------------- users and projects
    `INSERT INTO "user" (id, username, name, email, github_id, created_at)
     SELECT md5('user' || i)::uuid, 'user-' || lpad(i::text, 5, '0'), 'Bench User ' || i,
            'user-' || i || '@bench.example', 100000 + i, now() - interval '2 years'
     FROM generate_series(1, ${s.users}) i`,
    // mostly github; some gerrit, upload and test projects; one in ten public
    `INSERT INTO project (id, name, type, public)
     SELECT md5('project' || i)::uuid, 'project-' || lpad(i::text, 5, '0'),
            (CASE WHEN i % 20 = 7 THEN 'upload' WHEN i % 20 = 13 THEN 'test' WHEN i % 10 = 3 THEN 'gerrit' ELSE 'github' END)::project_type,
            i % 10 = 0
     FROM generate_series(1, ${s.projects}) i`,
    `INSERT INTO repository (id, name, html_url, clone_url, github_id, github_owner, project_id, private)
     SELECT md5('repo' || i)::uuid, 'repo-' || i, 'https://github.example/bench/repo-' || i,
            'https://github.example/bench/repo-' || i || '.git', 200000 + i, 'bench', md5('project' || i)::uuid, i % 10 <> 0
     FROM generate_series(1, ${s.projects}) i WHERE i % 20 <> 7`,
    // every project has an Owner; every user collaborates on 3..10 random projects besides
    `INSERT INTO collaborator (user_id, project_id, role)
     SELECT md5('user' || (1 + (i - 1) % ${s.users}))::uuid, md5('project' || i)::uuid, 'Owner'
     FROM generate_series(1, ${s.projects}) i
     ON CONFLICT DO NOTHING`,
    `INSERT INTO collaborator (user_id, project_id, role)
     SELECT md5('user' || u)::uuid, md5('project' || (1 + floor(random() * ${s.projects})::int))::uuid,
            (CASE WHEN random() < 0.8 THEN 'Developer' ELSE 'Administrator' END)::user_role
     FROM generate_series(1, ${s.users}) u, LATERAL generate_series(1, 3 + floor(random() * 8)::int + (u * 0)) k
     ON CONFLICT DO NOTHING`,
    // -------------------------------------------------------------- builds
    // Skewed over projects (random()^2): a few projects hold thousands of builds, most a few hundred.
    `CREATE TEMP TABLE bench_bn AS
     SELECT n, 1 + floor(${s.projects} * power(random(), 2))::int AS p, random() AS r, random() AS r2
     FROM generate_series(1, ${buildNumbers}) n`,
    `CREATE TEMP TABLE bench_bn2 AS
     SELECT n, p, r, r2,
            row_number() OVER (PARTITION BY p ORDER BY n) AS build_number,
            count(*) OVER (PARTITION BY p) AS total
     FROM bench_bn`,
    // One build row per build number, a second run for ~5 %. Newest builds are at now(), oldest a year ago.
    // The last two build numbers of each project are still active (jobs queued/scheduled/running).
    `CREATE TEMP TABLE bench_build AS
     SELECT md5('build' || n || '-' || rc)::uuid AS id, n, p, build_number, rc AS restart_counter, r2,
            now() - interval '365 days' * (1 - build_number::float8 / total) + (rc - 1) * interval '25 minutes' AS at,
            (build_number > total - 2 AND rc = (CASE WHEN r < 0.05 THEN 2 ELSE 1 END)) AS active
     FROM bench_bn2, LATERAL (SELECT 1 AS rc UNION ALL SELECT 2 WHERE r < 0.05) rcs`,
    // commits: one per build number of a project with a repository (restarts share it); branches vary
    `INSERT INTO "commit" (id, message, repository_id, "timestamp", author_name, author_email, author_username,
                           committer_name, committer_email, url, branch, project_id)
     SELECT substr(md5('c' || n) || md5('d' || n), 1, 40), 'Change ' || n || ': ' || repeat('x', 20 + n % 60),
            md5('repo' || p)::uuid, at - interval '3 minutes', 'Dev ' || (n % 37), 'dev' || (n % 37) || '@bench.example',
            'dev' || (n % 37), 'Dev ' || (n % 37), 'dev' || (n % 37) || '@bench.example',
            'https://github.example/bench/repo-' || p || '/commit/' || substr(md5('c' || n) || md5('d' || n), 1, 40),
            CASE WHEN r2 < 0.60 THEN 'main'
                 WHEN r2 < 0.75 THEN 'develop'
                 WHEN r2 < 0.95 THEN 'feature/topic-' || (n % 20)
                 ELSE 'release/1.' || (n % 5) END,
            md5('project' || p)::uuid
     FROM bench_build WHERE restart_counter = 1 AND p % 20 <> 7`,
    `INSERT INTO build (id, commit_id, build_number, project_id, restart_counter, is_cronjob, source)
     SELECT id, CASE WHEN p % 20 = 7 THEN NULL ELSE substr(md5('c' || n) || md5('d' || n), 1, 40) END,
            build_number, md5('project' || p)::uuid, restart_counter, r2 > 0.97,
            CASE WHEN p % 20 = 7 THEN 'upload' WHEN r2 > 0.97 THEN 'cronjob' ELSE 'push' END
     FROM bench_build`,
    // -------------------------------------------------------------- jobs
    // k = 0 is InfraBox's "Create Jobs" job; the others draw their state (finished ~86 %, failure, error,
    // killed, unstable, skipped), so the derived build statuses vary; active builds mix queued/scheduled/running.
    `INSERT INTO job (state, start_date, build_id, type, end_date, name, project_id, created_at, definition, dependencies, message)
     SELECT st, at + interval '5 seconds' * (k + 1),
            b.id,
            (CASE WHEN k = 0 THEN 'create_job_matrix' ELSE 'run_project_container' END)::job_type,
            CASE WHEN st IN ('queued', 'scheduled', 'running') THEN NULL ELSE at + interval '5 seconds' * (k + 1) + interval '1 second' * floor(30 + random() * 900) END,
            CASE WHEN k = 0 THEN 'Create Jobs' ELSE (ARRAY['build', 'unit-tests', 'lint', 'integration', 'e2e', 'docs', 'package', 'deploy', 'sbom', 'scan'])[1 + (k - 1) % 10] END,
            md5('project' || b.p)::uuid, at + interval '1 second' * k,
            jsonb_build_object('name', 'job-' || k, 'type', 'docker', 'docker_file', 'Dockerfile'),
            CASE WHEN k = 0 THEN NULL ELSE '[{"job": "Create Jobs", "on": ["finished"]}]'::jsonb END,
            CASE WHEN st = 'failure' THEN 'exit code 1' WHEN st = 'error' THEN 'image pull failed' ELSE NULL END
     FROM bench_build b,
          LATERAL generate_series(0, 1 + floor(random() * ${maxExtra})::int + (b.n * 0)) k,
          LATERAL (SELECT (CASE
              WHEN k = 0 THEN 'finished'
              WHEN b.active THEN (ARRAY['queued', 'scheduled', 'running', 'finished'])[1 + floor(random() * 4)::int + (k * 0)]
              ELSE (SELECT CASE WHEN x < 0.86 THEN 'finished' WHEN x < 0.91 THEN 'failure' WHEN x < 0.94 THEN 'error'
                                WHEN x < 0.96 THEN 'killed' WHEN x < 0.98 THEN 'unstable' ELSE 'skipped' END
                    FROM (SELECT random() + (k * 0) AS x) rx)
            END)::job_state AS st) s`,
    // -------------------------------------------------------------- logs for the agent tools
    // The failed jobs of each project's newest failed build get a 400-line log (InfraBox's HH:MM:SS| prefixes,
    // a compiler error and an npm failure near the end), for the failure summary (S) and log search (Q) variants.
    `UPDATE job SET console = (
       SELECT string_agg(to_char(TIMESTAMP '2026-01-01' + i * interval '1 second', 'HH24:MI:SS') || '|' ||
                CASE WHEN i = 380 THEN 'src/app.ts(42,7): error TS2322: Type ''string'' is not assignable to type ''number''.'
                     WHEN i = 395 THEN 'npm ERR! code ELIFECYCLE'
                     ELSE 'step ' || i || ': fetching package-' || (i % 97) || '@1.' || (i % 13) || '.0 ... ok' END,
                E'\n' ORDER BY i)
       FROM generate_series(1, 400) i)
     WHERE state IN ('failure', 'error') AND build_id IN (
       SELECT DISTINCT ON (project_id) build_id FROM job WHERE state IN ('failure', 'error') ORDER BY project_id, created_at DESC)`
  ]
}

export interface SeedOptions {
  scale: number
  adminUrl?: string
  /** database name (default mcp_bench_s<scale>_<random>) */
  name?: string
  log?: (line: string) => void
  /** revoked tokens added on top (spread over the users): how the auth lookup grows with the token table */
  revokedTokens?: number
}

/** Creates the database, the InfraBox subset and the gateway's tables, the dataset and the tokens; ANALYZEs. */
export async function seedBenchDatabase (opts: SeedOptions): Promise<SeededDatabase> {
  const adminUrl = opts.adminUrl ?? DEFAULT_ADMIN_URL
  const scaleTag = String(opts.scale).replace(/\W/g, '_')
  const name = opts.name ?? `mcp_bench_s${scaleTag}_${randomBytes(3).toString('hex')}`
  const log = opts.log ?? (() => {})
  const sizes = sizesFor(opts.scale)
  const started = Date.now()
  await withClient(adminUrl, async c => { await c.query(`CREATE DATABASE ${name}`) })
  const url = urlFor(adminUrl, name)
  const drop = async (): Promise<void> => {
    await withClient(adminUrl, async c => { await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) })
  }
  try {
    const db = kyselyWithOwnPool({ connectionString: url, max: 1, statementTimeoutMs: 600_000 })
    try {
      await applyInfraboxSubset(db)
      await migrateGateway(db)
    } finally {
      await db.destroy()
    }
    const tokens: BenchToken[] = []
    const hashes: string[] = []
    const counts: Record<string, number> = {}
    await withClient(url, async c => {
      await c.query('SET statement_timeout = 0')
      await c.query('BEGIN')
      for (const statement of datasetSql(sizes)) await c.query(statement)
      // One MCP token per user, minted like the gateway mints them; only the hash is stored. Scope {}.
      const { rows: users } = await c.query<{ id: string }>('SELECT id FROM "user" ORDER BY username')
      for (const u of users) {
        const m = mintToken()
        tokens.push({ token: m.token, tokenId: m.tokenId, userId: u.id })
        hashes.push(m.tokenHash)
      }
      await c.query(`
        INSERT INTO mcp_token (token_id, token_hash, user_id, name, enabled_projects, allow_trigger, expires_at, created_at)
        SELECT t.token_id, t.token_hash, t.user_id, 'bench agent', '{}', false,
               (now() AT TIME ZONE 'UTC') + interval '365 days', (now() AT TIME ZONE 'UTC')
        FROM unnest($1::varchar[], $2::varchar[], $3::uuid[]) AS t(token_id, token_hash, user_id)`,
      [tokens.map(t => t.tokenId), hashes, tokens.map(t => t.userId)])
      // Revoked tokens stay in the table (the dashboard lists them with ?include=revoked): a long-lived install
      // accumulates them. Not usable, so not in the load; they only make mcp_token bigger.
      if ((opts.revokedTokens ?? 0) > 0) {
        await c.query(`
          INSERT INTO mcp_token (token_id, token_hash, user_id, name, enabled_projects, allow_trigger, expires_at, created_at, revoked_at)
          SELECT substr(md5('revoked' || g), 1, 16), encode(sha256(('revoked' || g)::bytea), 'hex'), u.ids[1 + g % cardinality(u.ids)],
                 'revoked bench agent', '{}', false, (now() AT TIME ZONE 'UTC') + interval '30 days',
                 (now() AT TIME ZONE 'UTC') - interval '300 days', (now() AT TIME ZONE 'UTC') - interval '200 days'
          FROM generate_series(1, $1::int) g, (SELECT array_agg(id) AS ids FROM "user") u
          ON CONFLICT (token_id) DO NOTHING`, [opts.revokedTokens])
      }
      await c.query('COMMIT')
      // VACUUM sets the visibility map (index-only scans) as autovacuum eventually would on a live database.
      await c.query('VACUUM ANALYZE')
      for (const table of ['project', 'user', 'collaborator', 'repository', 'commit', 'build', 'job', 'mcp_token']) {
        const { rows } = await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${table}"`)
        counts[table] = rows[0]?.n ?? 0
      }
    })
    // pairs: every (token, project) the token's owner collaborates on
    const index = new Map(tokens.map((t, i) => [t.userId, i]))
    const pairs = await withClient(url, async c => {
      const { rows } = await c.query<{ user_id: string, project_id: string }>('SELECT user_id, project_id FROM collaborator ORDER BY user_id, project_id')
      return rows.flatMap(r => {
        const i = index.get(r.user_id)
        return i === undefined ? [] : [{ token: i, projectId: r.project_id }]
      })
    })
    counts.pairs = pairs.length
    const seedMs = Date.now() - started
    log(`seeded ${name} (scale ${opts.scale}) in ${(seedMs / 1000).toFixed(1)} s: ${Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(', ')}`)
    return { name, url, scale: opts.scale, sizes, counts, tokens, pairs, seedMs, drop }
  } catch (err) {
    await drop().catch(() => {})
    throw err
  }
}

/** An already seeded database (run.ts --database-url with --tokens-file): tokens and pairs from the file and the database. */
export interface SavedSeed { url: string, name: string, scale: number, sizes: SeedSizes, tokens: BenchToken[] }

async function main (): Promise<void> {
  const args = process.argv.slice(2)
  const flag = (name: string): string | undefined => {
    const i = args.indexOf(`--${name}`)
    return i >= 0 ? args[i + 1] : undefined
  }
  const scale = Number(flag('scale') ?? process.env.BENCH_SCALE ?? '1')
  if (!Number.isFinite(scale) || scale <= 0) throw new Error('--scale must be a positive number')
  const keep = args.includes('--keep')
  const revokedTokens = Number(flag('revoked-tokens') ?? '0')
  const seeded = await seedBenchDatabase({ scale, revokedTokens, adminUrl: flag('database-url') ?? DEFAULT_ADMIN_URL, log: line => { console.error(line) } })
  if (keep) {
    const file = flag('tokens-file') ?? `bench/results/seed-${seeded.name}.json`
    const saved: SavedSeed = { url: seeded.url, name: seeded.name, scale, sizes: seeded.sizes, tokens: seeded.tokens }
    await writeFile(file, JSON.stringify(saved, null, 2))
    console.log(JSON.stringify({ url: seeded.url, tokensFile: file, counts: seeded.counts }))
  } else {
    await seeded.drop()
    console.error(`dropped ${seeded.name}`)
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err: unknown) => { console.error(err); process.exit(1) })
}
