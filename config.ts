// Configuration from the environment (and .env): one TypeBox schema, validated at start, one line per mistake.
import { Type, type Static } from '@fastify/type-provider-typebox'
import { join } from 'node:path'
import { Value } from 'typebox/value'

const Int = (def: number, min: number, max: number, description: string) =>
  Type.Integer({ default: def, minimum: min, maximum: max, description })
const Flag = (def: boolean, description: string) => Type.Boolean({ default: def, description })
const Str = (description: string) => Type.Optional(Type.String({ minLength: 1, description }))

export const ConfigSchema = Type.Object({
  HOST: Type.String({ default: '0.0.0.0', minLength: 1, description: 'address to listen on' }),
  PORT: Int(8080, 0, 65535, 'port to listen on'),
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://', description: 'InfraBox PostgreSQL; unset = embedded PGlite under DATA_DIR' })),
  DB_POOL_MAX: Int(10, 1, 200, 'connections of the request pool'),
  DB_PREPARED_STATEMENTS: Flag(true, 'send the hot statements as named prepared statements; false behind PgBouncer in transaction mode (before 1.21)'),
  DATA_DIR: Type.String({ default: './.data', minLength: 1, description: 'embedded database, generated session keys, fs artifacts' }),
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://', description: 'Redis for the limiter shared by all replicas; unset = in-process limiter' })),
  REDIS_CLUSTER: Flag(false, 'REDIS_URL names Redis Cluster seed nodes (one URL or several, comma-separated)'),
  INFRABOX_RSA_PUBLIC_KEY_PATH: Str('the key InfraBox signs user sessions with: PEM SPKI, PEM PKCS#1 or an OpenSSH ssh-rsa line'),
  INFRABOX_RSA_PRIVATE_KEY_PATH: Str('PEM private key; only used to print a demo session token'),
  SESSION_JWT_PUBLIC_KEY: Str('the session public key as PEM text (instead of the path)'),
  MCP_RATE_LIMIT_DEFAULT_RPM: Int(30, 1, 1_000_000, 'requests per minute per user for most buckets'),
  MCP_RATE_LIMIT_LOG_RPM: Int(10, 1, 1_000_000, 'requests per minute per user for job logs'),
  MCP_RATE_LIMIT_ARTIFACT_RPM: Int(10, 1, 1_000_000, 'requests per minute per user for artifacts'),
  MCP_RATE_LIMIT_TRIGGER_RPM: Int(5, 1, 1_000_000, 'build triggers per minute per user'),
  MCP_RATE_LIMIT_INTROSPECT_RPM: Int(60, 1, 1_000_000, 'token info (GET /me, get_token_info) per minute per user'),
  MCP_RATE_LIMIT_PROTOCOL_RPM: Int(300, 1, 1_000_000, 'MCP protocol requests that are not tool calls (initialize, tools/list, ping, unknown tools) per minute per user'),
  MCP_RATE_LIMIT_UNAUTH_RPM: Int(120, 1, 1_000_000, 'requests refused before a user is known (401, unknown routes, guard) per minute per client address; then 429'),
  RATE_LIMIT_REDIS_TIMEOUT_MS: Int(50, 1, 10_000, 'limiter answer deadline before failing open'),
  MCP_TOKEN_MAX_EXPIRY_DAYS: Int(365, 1, 36_500, 'longest token lifetime'),
  MCP_TOKEN_MAX_PER_USER: Int(20, 1, 10_000, 'live tokens per user'),
  AUDIT_FLUSH_MS: Int(100, 5, 60_000, 'audit batch interval'),
  AUDIT_BUFFER_MAX: Int(100_000, 100, 10_000_000, 'audit rows held while PostgreSQL is unreachable'),
  LOG_DIGEST_WARM_BYTES: Int(8 * 1024 * 1024, 0, 1024 * 1024 * 1024, 'a failed job whose log (job.console) has at least this many bytes gets its failure-summary digest computed when InfraBox announces the failure, so the first call finds it ready; 0 = off'),
  ARTIFACT_STORAGE: Type.Union([Type.Literal('fs'), Type.Literal('s3')], { default: 'fs', description: 'where artifact bytes live' }),
  ARTIFACT_FS_ROOT: Str('root of archive/<job_id>/<filename>; default DATA_DIR/artifacts'),
  S3_ENDPOINT: Str('S3-compatible endpoint URL'),
  S3_BUCKET: Str('bucket holding archive/<job_id>/<filename>'),
  S3_REGION: Type.String({ default: 'us-east-1', minLength: 1 }),
  S3_ACCESS_KEY_ID: Str('S3 access key'),
  S3_SECRET_ACCESS_KEY: Str('S3 secret key'),
  S3_FORCE_PATH_STYLE: Flag(false, 'path-style S3 addressing (MinIO, Ceph)'),
  REQUEST_TIMEOUT_MS: Int(30_000, 100, 3_600_000, 'longest time to receive a whole request (headers and body); a trickled body is cut with 408'),
  CONNECTION_TIMEOUT_MS: Int(60_000, 100, 3_600_000, 'a socket silent this long is closed (wait_for_build answers within 45 s)'),
  TRUST_PROXY: Type.String({ default: 'false', description: 'Fastify trustProxy: true, false, a hop count or comma-separated addresses' }),
  LOG_LEVEL: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map(l => Type.Literal(l)), { default: 'info' }),
  MCP_ALLOWED_ORIGINS: Type.String({ default: '', description: 'comma-separated browser origins allowed on the MCP endpoint' }),
  SESSION_ALLOWED_ORIGINS: Type.String({ default: '', description: 'comma-separated browser origins (besides the gateway\'s own) whose pages may change tokens with the InfraBox session cookie' }),
  PUBLIC_BASE_URL: Type.Optional(Type.String({ pattern: '^https?://[^/?#@]+/?$', description: 'the gateway as clients reach it (scheme://host[:port], no path); turns the OAuth server on' })),
  INFRABOX_LOGIN_URL: Type.Optional(Type.String({ pattern: '^https?://', description: 'InfraBox login page; the authorize URL to return to is passed as return_to (or replaces {return_to})' })),
  OAUTH_CIMD_ALLOW_PRIVATE: Flag(false, 'fetch client ID metadata documents from private, loopback and link-local addresses too'),
  OAUTH_ACCESS_TOKEN_TTL_SECONDS: Int(3600, 60, 86_400, 'lifetime of an access token issued by the OAuth server'),
  OAUTH_RATE_LIMIT_RPM: Int(60, 1, 1_000_000, 'requests per minute per client address on each OAuth endpoint'),
  OAUTH_REGISTER_RPM: Int(10, 1, 1_000_000, 'dynamic client registrations per minute per client address'),
  MIGRATE_ON_START: Flag(true, 'apply the gateway migrations at start'),
  SEED_DEMO: Flag(true, 'embedded mode only: seed demo data into an empty database')
}, { additionalProperties: true })

export type Config = Static<typeof ConfigSchema>

export class ConfigError extends Error {}

/** Reads, defaults, coerces and checks the environment; throws ConfigError with one line naming the variable. */
export function loadConfig (env: Record<string, string | undefined> = process.env): Config {
  const known = Object.keys(ConfigSchema.properties)
  // Empty strings mean "unset" (as in a copied .env.example), so defaults apply.
  const input: Record<string, string> = {}
  for (const key of known) {
    const v = env[key]
    if (v !== undefined && v.trim() !== '') input[key] = v.trim()
  }
  const value = Value.Convert(ConfigSchema, Value.Default(ConfigSchema, input))
  const first = Value.Errors(ConfigSchema, value)[0]
  if (first !== undefined) {
    const name = first.instancePath.replace(/^\//, '') || 'configuration'
    const raw = input[name]
    throw new ConfigError(`invalid configuration: ${name} ${first.message}${raw !== undefined ? ` (got ${JSON.stringify(redactUserinfo(String(raw)))})` : ''}`)
  }
  const config = value as Config
  // A URL the pattern admits may still not parse; the drivers' own errors would carry it whole, password included.
  for (const name of URL_VARIABLES) {
    const raw = config[name]
    if (raw !== undefined && !URL.canParse(raw)) throw new ConfigError(`invalid configuration: ${name} is not a valid URL (got ${JSON.stringify(redactUserinfo(raw))})`)
  }
  if (config.ARTIFACT_STORAGE === 's3' && config.S3_BUCKET === undefined) {
    throw new ConfigError('invalid configuration: S3_BUCKET is required when ARTIFACT_STORAGE=s3')
  }
  if (config.REDIS_URL !== undefined) {
    const urls = config.REDIS_URL.split(',').map(u => u.trim())
    if (urls.length > 1 && !config.REDIS_CLUSTER) throw new ConfigError('invalid configuration: REDIS_URL lists several nodes; set REDIS_CLUSTER=true for a Redis Cluster')
    for (const u of urls) {
      if (!/^rediss?:\/\/[^/?#\s]+/.test(u) || !URL.canParse(u)) throw new ConfigError(`invalid configuration: REDIS_URL ${JSON.stringify(redactUserinfo(u))} is not a redis:// or rediss:// URL`)
    }
  }
  parseTrustProxy(config.TRUST_PROXY)
  return config
}

/** Single URLs; REDIS_URL, which may list Redis Cluster nodes, is checked node by node in loadConfig (redacted the same way). */
const URL_VARIABLES = ['DATABASE_URL', 'S3_ENDPOINT', 'PUBLIC_BASE_URL', 'INFRABOX_LOGIN_URL'] as const

/**
 * A value with the userinfo of a URL (`user:password@`) masked, however malformed the rest is: everything between the
 * scheme and the last `@` (SPEC §13.11: no credential is ever printed).
 */
export function redactUserinfo (raw: string): string {
  if (!raw.includes('@')) return raw
  return raw.replace(/^([a-z][a-z0-9+.-]*:\/*)?[^]*@/i, (_m, scheme: string | undefined) => `${scheme ?? ''}[redacted]@`)
}

/** TRUST_PROXY as Fastify takes it (a hop count becomes "trust the nearest N"). */
export function parseTrustProxy (raw: string): boolean | string[] | ((address: string, hop: number) => boolean) {
  if (raw === 'true') return true
  if (raw === 'false') return false
  if (/^\d+$/.test(raw)) {
    const hops = Number(raw)
    return (_address: string, hop: number) => hop < hops
  }
  const list = raw.split(',').map(s => s.trim()).filter(s => s !== '')
  if (list.length === 0) throw new ConfigError(`invalid configuration: TRUST_PROXY must be true, false, a hop count or addresses (got ${JSON.stringify(raw)})`)
  return list
}

/** Root of `archive/<job_id>/<filename>` for the filesystem store. */
export const artifactRoot = (config: Config): string => config.ARTIFACT_FS_ROOT ?? join(config.DATA_DIR, 'artifacts')

export function allowedOrigins (config: Config): Set<string> {
  return originList(config.MCP_ALLOWED_ORIGINS)
}

/** SESSION_ALLOWED_ORIGINS as a set of origins in the form browsers send (lower case). */
export function sessionAllowedOrigins (config: Config): Set<string> {
  return originList(config.SESSION_ALLOWED_ORIGINS)
}

const originList = (raw: string): Set<string> => new Set(raw.split(',').map(s => s.trim().replace(/\/$/, '').toLowerCase()).filter(s => s !== ''))
