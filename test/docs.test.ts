// The README's generated sections match what `npm run docs` would write from OPERATIONS today.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { README, renderReadme } from '../scripts/readme.js'

t.test('the operation table is current (run `npm run docs` after changing an operation)', async t => {
  const readme = readFileSync(README, 'utf8')
  t.equal(renderReadme(readme), readme)
})
