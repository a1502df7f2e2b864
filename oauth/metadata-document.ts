// Fetches a client ID metadata document with SSRF guards: https only, public addresses only, no redirects, 5 s, 64 KiB.
import { request as httpsRequest } from 'node:https'
import { lookup } from 'node:dns/promises'
import { BlockList, isIP, type LookupFunction } from 'node:net'

export class MetadataDocumentError extends Error {
  override name = 'MetadataDocumentError'
}

export interface FetchLimits {
  /** allow private, loopback, link-local and unique-local addresses (OAUTH_CIMD_ALLOW_PRIVATE) */
  allowPrivate: boolean
  timeoutMs: number
  maxBytes: number
  /** extra trusted CA certificates */
  ca: string | Buffer | null
}

// Everything that is not a public unicast address: RFC 6890 special-purpose ranges, multicast and reserved space.
const NOT_PUBLIC = new BlockList()
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15],
  ['198.51.100.0', 24], ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4]
] as const) NOT_PUBLIC.addSubnet(net, prefix, 'ipv4')
for (const [net, prefix] of [
  ['::', 128], ['::1', 128],
  // IPv4-mapped, IPv4-compatible-style translation and 6to4 can carry a private IPv4 address: refused as a whole
  ['::ffff:0:0', 96], ['64:ff9b::', 96], ['64:ff9b:1::', 48], ['2002::', 16],
  ['100::', 64], ['2001::', 23], ['2001:db8::', 32], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8]
] as const) NOT_PUBLIC.addSubnet(net, prefix, 'ipv6')

/** Is this IP address a public unicast address? */
export function isPublicAddress (address: string): boolean {
  const family = isIP(address)
  if (family === 4) return !NOT_PUBLIC.check(address, 'ipv4')
  if (family === 6) return !NOT_PUBLIC.check(address, 'ipv6')
  return false
}

interface Resolved { address: string, family: 4 | 6 }

async function resolveHost (host: string, deadline: AbortSignal): Promise<Resolved[]> {
  const literal = isIP(host)
  if (literal !== 0) return [{ address: host, family: literal === 4 ? 4 : 6 }]
  const found = await Promise.race([
    lookup(host, { all: true, verbatim: true }),
    new Promise<never>((_resolve, reject) => {
      deadline.addEventListener('abort', () => { reject(new MetadataDocumentError('the metadata document host did not resolve in time')) }, { once: true })
    })
  ]).catch((err: unknown) => {
    if (err instanceof MetadataDocumentError) throw err
    throw new MetadataDocumentError(`the metadata document host ${host} does not resolve`)
  })
  return found.map(a => ({ address: a.address, family: a.family === 6 ? 6 : 4 }))
}

/** Connects to the one address that was checked, whatever the name resolves to a moment later (DNS rebinding). */
const pinnedLookup = (pinned: Resolved): LookupFunction => (_hostname, options, callback) => {
  if (options.all === true) callback(null, [{ address: pinned.address, family: pinned.family }])
  else callback(null, pinned.address, pinned.family)
}

/**
 * GETs `url` and parses it as JSON. Refuses before connecting when the URL is not https, carries credentials, or its
 * host resolves to any non-public address (unless allowed); then connects to the checked address only, follows no
 * redirect, and gives up after `timeoutMs` in all or past `maxBytes`.
 */
export async function fetchMetadataDocument (url: URL, limits: FetchLimits): Promise<unknown> {
  if (url.protocol !== 'https:') throw new MetadataDocumentError('a client metadata document URL must use https')
  if (url.username !== '' || url.password !== '') throw new MetadataDocumentError('a client metadata document URL must not carry credentials')
  const controller = new AbortController()
  const timer = setTimeout(() => { controller.abort() }, limits.timeoutMs)
  timer.unref()
  try {
    const host = url.hostname.replace(/^\[|\]$/g, '')
    const addresses = await resolveHost(host, controller.signal)
    const refused = addresses.find(a => !isPublicAddress(a.address))
    if (addresses.length === 0) throw new MetadataDocumentError(`the metadata document host ${host} does not resolve`)
    if (refused !== undefined && !limits.allowPrivate) {
      throw new MetadataDocumentError(`the metadata document host ${host} is not a public address (${refused.address}); only public hosts are fetched`)
    }
    const pinned = addresses[0] as Resolved
    return await new Promise<unknown>((resolve, reject) => {
      const req = httpsRequest({
        host,
        port: url.port === '' ? 443 : Number(url.port),
        path: `${url.pathname}${url.search}`,
        method: 'GET',
        headers: { accept: 'application/json', 'user-agent': 'infrabox-mcp-gateway (client metadata document)' },
        lookup: pinnedLookup(pinned),
        servername: isIP(host) === 0 ? host : '',
        agent: false,
        ...(limits.ca !== null ? { ca: limits.ca } : {}),
        signal: controller.signal
      }, (res) => {
        const status = res.statusCode ?? 0
        if (status >= 300 && status < 400) {
          res.destroy()
          reject(new MetadataDocumentError(`the metadata document answered a redirect (${status}); redirects are not followed`))
          return
        }
        if (status !== 200) {
          res.destroy()
          reject(new MetadataDocumentError(`the metadata document answered HTTP ${status}`))
          return
        }
        const declared = Number(res.headers['content-length'] ?? '0')
        if (declared > limits.maxBytes) {
          res.destroy()
          reject(new MetadataDocumentError(`the metadata document is larger than ${limits.maxBytes} bytes`))
          return
        }
        const chunks: Buffer[] = []
        let size = 0
        res.on('data', (chunk: Buffer) => {
          size += chunk.length
          if (size > limits.maxBytes) {
            res.destroy()
            reject(new MetadataDocumentError(`the metadata document is larger than ${limits.maxBytes} bytes`))
            return
          }
          chunks.push(chunk)
        })
        res.on('end', () => {
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')))
          } catch {
            reject(new MetadataDocumentError('the metadata document is not JSON'))
          }
        })
        res.on('error', () => {
          reject(new MetadataDocumentError(controller.signal.aborted
            ? `the metadata document did not arrive within ${limits.timeoutMs} ms`
            : 'the metadata document could not be read'))
        })
      })
      req.on('error', (err) => {
        reject(controller.signal.aborted
          ? new MetadataDocumentError(`the metadata document did not arrive within ${limits.timeoutMs} ms`)
          : new MetadataDocumentError(`the metadata document could not be fetched (${err.message})`))
      })
      req.end()
    })
  } finally {
    clearTimeout(timer)
  }
}
