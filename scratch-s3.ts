import { sql } from 'kysely'
import { createTestDatabase } from './test/helpers/db.js'
import { seedFixture, FIXTURE } from './db/seed.js'
import { listBuilds } from './db/builds.js'
import { readJobLog } from './db/logs.js'
const t = await createTestDatabase()
try {
  await seedFixture(t.db)
  const P = FIXTURE.projects.github
  await sql`insert into commit (id, repository_id, "timestamp", author_name, author_email, committer_name, committer_email, url, branch, project_id)
    select md5('c'||g), ${FIXTURE.repositories.github}, now() - (g||' minutes')::interval, 'a','a','a','a','u', case when g % 50 = 0 then 'rare' else 'main' end, ${P} from generate_series(1,20000) g`.execute(t.db)
  await sql`insert into build (id, commit_id, build_number, project_id, restart_counter) select gen_random_uuid(), md5('c'||g), 100+g, ${P}, 1 from generate_series(1,20000) g`.execute(t.db)
  await sql`insert into job (state, build_id, type, name, project_id, created_at, end_date, definition)
    select (case when b.build_number % 997 = 0 and k = 3 then 'killed' else 'finished' end)::job_state, b.id, 'run_project_container', 'j'||k, b.project_id, now(), now(), '{}' from build b, generate_series(1,5) k where b.build_number > 100`.execute(t.db)
  await sql`analyze`.execute(t.db)
  const { Kysely, PostgresDialect } = await import('kysely')
  const pg = (await import('pg')).default
  const queries: Array<{ sql: string, parameters: readonly unknown[] }> = []
  const k = new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: t.url }) }), log: e => { if (e.level === 'query') queries.push(e.query) } })
  const explain = async (label: string, fn: () => Promise<unknown>) => {
    queries.length = 0
    const t0 = performance.now(); await fn(); const ms = performance.now() - t0
    const q = queries.at(-1)!
    const c = new pg.Client({ connectionString: t.url }); await c.connect()
    const r = await c.query('explain (analyze, buffers off, costs off) ' + q.sql, q.parameters as unknown[])
    await c.end()
    console.log(`--- ${label} (${ms.toFixed(1)} ms end-to-end)`)
    console.log(r.rows.map((x: any) => x['QUERY PLAN']).join('\n'))
  }
  if (process.argv[2] === 'sql') { await listBuilds(k, P, { limit: 20 }); console.log(queries[0]!.sql) }
  await explain('first page', () => listBuilds(k, P, { limit: 20 }))
  const p1 = await listBuilds(k, P, { limit: 20 })
  await explain('second page', () => listBuilds(k, P, { limit: 20, cursor: p1.next_cursor! }))
  await explain('status=killed', () => listBuilds(k, P, { limit: 20, status: 'killed' }))
  await explain('branch=rare', () => listBuilds(k, P, { limit: 20, branch: 'rare' }))
  await explain('branch=main', () => listBuilds(k, P, { limit: 20, branch: 'main' }))
  await explain('branch=none', () => listBuilds(k, P, { limit: 20, branch: 'none' }))
  await explain('status=finished', () => listBuilds(k, P, { limit: 20, status: 'finished' }))
  await explain('status=running', () => listBuilds(k, P, { limit: 20, status: 'running' }))
  if (process.env.IDX) await sql`create index commit_project_id_id_idx on commit (project_id, id)`.execute(t.db)
  await sql`analyze commit`.execute(t.db)
  await explain('first page with commit(project_id,id) index', () => listBuilds(k, P, { limit: 20 }))
  await explain('branch=rare with index', () => listBuilds(k, P, { limit: 20, branch: 'rare' }))
  // a 50 MB log
  await sql`update job set console = repeat('0123456789abcdefghijklmnopqrstuvwxyz ✓ line of log output\n', 900000) where id = ${FIXTURE.jobs.compile}`.execute(t.db)
  let t0 = performance.now(); const l = await readJobLog(k, P, FIXTURE.jobs.compile, {}); console.log('50MB log default window', (performance.now()-t0).toFixed(1), 'ms', l.total_bytes, l.length, l.offset)
  t0 = performance.now(); const l2 = await readJobLog(k, P, FIXTURE.jobs.compile, { tail: 100 }); console.log('tail 100', (performance.now()-t0).toFixed(1), 'ms', l2.length, l2.log.split('\n').length)
  t0 = performance.now(); const l3 = await readJobLog(k, P, FIXTURE.jobs.compile, { offset: 1000, length: 100 }); console.log('offset', (performance.now()-t0).toFixed(1), 'ms', l3.length, JSON.stringify(l3.log))
  await k.destroy()
} finally { await t.drop() }
