// One style for the whole tree: neostandard (what fastify/demo runs), with TypeScript support.
import neostandard from 'neostandard'

export default [
  ...neostandard({
    ts: true,
    ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.tap/**', '.data/**']
  }),
  {
    rules: {
      // `void reply.send(…)` marks a Fastify promise as deliberately not awaited
      'no-void': ['error', { allowAsStatement: true }],
      // TypeBox's idiom: `export const X = Type.Object(…)` and `export type X = Static<typeof X>` share a name
      '@typescript-eslint/no-redeclare': 'off',
      'no-redeclare': 'off'
    }
  }
]
