// Compiled query shapes (db/compiled.ts): built once per Kysely instance, values bound per call, constants kept.
import { sql } from 'kysely'
import t from 'tap'
import { compiledShape, compiledShapes, type Slots } from '../../db/compiled.js'
import { createTestDatabase } from '../helpers/db.js'

const { db } = await createTestDatabase(t)

t.test('slots are bound per call, constants of the shape stay, the builder runs once', async t => {
  let built = 0
  const shape = compiledShape((db, v: Slots<{ userId: string, limit: number }>) => {
    built++
    return db.selectFrom('user').select(['user.id', 'user.username'])
      .where('user.id', '=', v.userId)
      .where('user.username', '!=', 'a constant of the shape')
      .limit(v.limit)
  })
  t.same(await shape.execute(db, { userId: '00000000-0000-4000-8000-000000000001', limit: 1 }), [])
  t.same(await shape.execute(db, { userId: '00000000-0000-4000-8000-000000000002', limit: 5 }), [])
  t.equal(built, 1, 'built and compiled once for this database')
  t.match(shape.sql(db), /limit \$3/)
  t.notMatch(shape.sql(db), /constant/, 'constants are parameters, not text')
})

t.test('values reach PostgreSQL with their types, arrays as one parameter', async t => {
  const shape = compiledShape((db, v: Slots<{ ids: string[], n: number }>) => db
    .selectNoFrom(eb => [
      sql<number>`cardinality(${v.ids}::uuid[])`.as('count'),
      eb.val(v.n).as('n')
    ]))
  const [row] = await shape.execute(db, { ids: ['00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002'], n: 7 })
  t.equal(Number(row?.count), 2)
  t.equal(Number(row?.n), 7)
})

t.test('a family of shapes compiles each key once', async t => {
  const built: string[] = []
  const shapes = compiledShapes((db, v: Slots<{ name: string }>, key: 'all' | 'named') => {
    built.push(key)
    const q = db.selectFrom('user').select('user.id')
    return key === 'named' ? q.where('user.username', '=', v.name) : q
  })
  await shapes('all').execute(db, { name: '' })
  await shapes('named').execute(db, { name: 'x' })
  await shapes('named').execute(db, { name: 'y' })
  t.same(built, ['all', 'named'])
})

t.test('a slot written into the SQL text is refused at first use', async t => {
  const shape = compiledShape((db, v: Slots<{ column: string }>) => db.selectFrom('user').select(sql.raw<string>(v.column).as('x')))
  await t.rejects(shape.execute(db, { column: 'id' }), /slot was written into the SQL text/)
})
