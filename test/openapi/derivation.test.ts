// The refusal derivation alone (plugins/openapi.ts): routes that other work adds come out right from their config, without edits there.
import t from 'tap'
import { documentedResponses, type RouteFacts } from '../../plugins/openapi.js'
import { Type } from '@fastify/type-provider-typebox'

const Created = Type.Object({ build: Type.Object({ id: Type.String() }) })

t.test('an action on a job (SPEC §14 shape): trigger right, fail-closed budget, its own 409', async t => {
  const facts: RouteFacts = {
    method: 'POST',
    params: ['projectId', 'jobId'],
    validatesInput: false,
    config: { chain: true, action: 'restart_job', bucket: 'trigger_build', rpm: 'trigger', trigger: true, failClosed: true, refusals: { 409: 'MCP_CONFLICT: already restarted' } }
  }
  const doc = documentedResponses(facts, { 201: Created }, ['application/json'])
  t.same(Object.keys(doc), ['201', '400', '401', '403', '404', '409', '413', '415', '429', '503'])
  t.match(doc['403']?.description, /MCP_PROJECT_FORBIDDEN[\s\S]*MCP_TRIGGER_FORBIDDEN/)
  t.match(doc['404']?.description, /no such project[\s\S]*no job with that id in this project/)
  t.match(doc['503']?.description, /rate limiter cannot answer[\s\S]*PostgreSQL is unreachable/)
  t.equal(doc['409']?.description, 'MCP_CONFLICT: already restarted')
  t.ok(doc['201']?.headers?.['RateLimit-Policy'], 'a budgeted success carries the RateLimit headers')
})

t.test('a read without a project (get_my_access_log shape): no 403/404, a 400 only for its query', async t => {
  const base = { method: 'GET', params: [], config: { chain: true, action: 'get_my_access_log', bucket: 'introspect', rpm: 'introspect' as const } }
  t.same(Object.keys(documentedResponses({ ...base, validatesInput: true }, { 200: Created }, ['application/json'])), ['200', '400', '401', '429', '503'])
  t.same(Object.keys(documentedResponses({ ...base, validatesInput: false }, { 200: Created }, ['application/json'])), ['200', '401', '429', '503'])
})

t.test('the MCP endpoint once it spends a budget: a 429 appears by itself', async t => {
  const facts: RouteFacts = { method: 'POST', params: [], validatesInput: false, config: { chain: true, endpoint: true, bucket: 'mcp_protocol', rpm: 300 } }
  t.ok(documentedResponses(facts, {}, ['application/json'])['429'])
  t.notOk(documentedResponses({ ...facts, config: { chain: true, endpoint: true } }, {}, ['application/json'])['429'])
})

t.test('token administration: session refusals, never the chain\'s', async t => {
  const facts: RouteFacts = { method: 'DELETE', params: ['tokenId'], validatesInput: false, config: { session: true, action: 'revoke_mcp_token' } }
  const doc = documentedResponses(facts, { 200: Created }, ['application/json'])
  t.same(Object.keys(doc), ['200', '400', '401', '403', '404', '503'])
  t.match(doc['401']?.description, /MCP_UNAUTHORIZED/)
  t.notOk(doc['401']?.headers, 'no WWW-Authenticate challenge for a session')
  t.match(doc['404']?.description, /among your live tokens/)
})
