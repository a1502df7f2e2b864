// Identifiers as the gateway accepts them: InfraBox's ids are UUIDs, written in their canonical 8-4-4-4-12 hex form.
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
