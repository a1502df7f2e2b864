// PostgreSQL connections of the benchmark's variants: the bare servers (a, b, d) get as many as the gateway (G) holds
// in all, its request, audit and auth pools together (docs/performance.md, "Variants").
import type { Config } from '../config.js'
import { gatewayConnections } from '../plugins/storage.js'

export const barePoolMax = (config: Pick<Config, 'DB_POOL_MAX'>): number => gatewayConnections(config).total
