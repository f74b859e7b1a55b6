import {
  type Db,
  installJobQueue,
  type Logger,
  type PortalConfig,
  PortalRateLimits,
  type VomeConfig,
  connect,
  createLogger,
  loadConfig,
  loadPortalConfig,
  migrateToLatest,
  resolveDatabaseUrl,
} from '@vome/core';

/** State shared by every request handler of the portal: settings, database, limits, logger. */
export interface Portal {
  config: PortalConfig;
  vome: VomeConfig;
  db: Db;
  limits: PortalRateLimits;
  logger: Logger;
}

// One per process, kept on globalThis so that Next.js's separate module
// graphs (route handlers, pages, proxy) share a single pool.
const holder = globalThis as typeof globalThis & { vomePortal?: Promise<Portal> };

async function openPortal(): Promise<Portal> {
  const vome = loadConfig();
  const config = loadPortalConfig();
  const logger = createLogger(vome.logLevel === 'silent' ? 'info' : vome.logLevel).child({ component: 'portal' });
  const url = await resolveDatabaseUrl(vome);
  const db = connect(url);
  await migrateToLatest(db);
  await installJobQueue(url);
  const limits = PortalRateLimits.open(url, config.rateLimits);
  logger.info({ portalUrl: config.portalUrl }, 'portal ready');
  return { config, vome, db, limits, logger };
}

/** Returns the process's portal, opening it on first use. */
export function getPortal(): Promise<Portal> {
  holder.vomePortal ??= openPortal().catch((error: unknown) => {
    holder.vomePortal = undefined;
    throw error;
  });
  return holder.vomePortal;
}
