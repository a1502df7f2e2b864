import { openEmbedded } from './db/connect.js'
import { applyInfraboxSubset, migrateGateway } from './db/migrate.js'
import { seedDemo, FIXTURE } from './db/seed.js'
import { listBuilds, getBuild } from './db/builds.js'
import { readJobLog } from './db/logs.js'
import { listArtifacts } from './db/artifacts.js'
import { listTestRuns, listJobs } from './db/jobs.js'
import { triggerBuild } from './db/trigger.js'
import { listProjects } from './db/projects.js'
import { readFileSync } from 'node:fs'
import { PGlite } from '@electric-sql/pglite'
import { pgcrypto } from '@electric-sql/pglite/contrib/pgcrypto'
import { PGliteDialect } from 'kysely-pglite-dialect'
import { Kysely } from 'kysely'
const pgl = await PGlite.create({ extensions: { pgcrypto } })
await pgl.exec(readFileSync('db/infrabox-schema/infrabox.sql', 'utf8'))
const e = { db: new Kysely<any>({ dialect: new PGliteDialect(pgl) }), close: async () => { await pgl.close() } }
console.log(await seedDemo(e.db, { artifactRoot: '/tmp/scratch/pgl' }), await seedDemo(e.db))
const P = FIXTURE.projects.github
console.log((await listBuilds(e.db, P, { limit: 3, status: 'failure' })).items.map(b => [b.build_number, b.status, b.branch, b.created_at]))
console.log((await listBuilds(e.db, P, { limit: 3, branch: 'feature/login' })).items.map(b => [b.build_number, b.status, b.branch]))
console.log((await getBuild(e.db, P, FIXTURE.builds.b2)).jobs.length)
console.log(await readJobLog(e.db, P, FIXTURE.jobs.deploy, { offset: 5, length: 30 }))
console.log(await readJobLog(e.db, P, FIXTURE.jobs.compile, { tail: 1 }))
console.log(await listArtifacts(e.db, P, FIXTURE.jobs.compile))
console.log((await listTestRuns(e.db, P, FIXTURE.jobs.compile, { limit: 10, state: 'failure' })).items.length)
const j = await listJobs(e.db, P, FIXTURE.builds.b8, { limit: 2 }); console.log((await listJobs(e.db, P, FIXTURE.builds.b8, { limit: 2, cursor: j.next_cursor! })).items.map(x => x.name))
console.log(await triggerBuild(e.db, { id: P, type: 'github' }, { sha: FIXTURE.commits.main2.slice(0, 8) }))
console.log((await listProjects(e.db, { userId: FIXTURE.users.demo, enabledProjects: {}, limit: 10 })).items.length)
await e.close()
