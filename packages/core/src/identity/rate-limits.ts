import pg from 'pg';
import { RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';
import { rateLimitBucket } from './client-address.js';

/** A limit: at most `points` requests per `durationSeconds`. */
export interface RateLimitRule {
  points: number;
  durationSeconds: number;
}

export type RateLimitedAction = 'sign-in' | 'redeem' | 'api';

export type RateLimitRules = Record<RateLimitedAction, RateLimitRule>;

export type RateLimitOutcome = { allowed: true } | { allowed: false; retryAfterSeconds: number };

/**
 * The portal's rate limits, kept in PostgreSQL (table `rate_limits`) so
 * that every portal process counts against the same numbers. Each request
 * is counted against its client address (an IPv6 client by its /64) and,
 * when signed in, its account.
 * Either count over the limit rejects the request.
 */
export class PortalRateLimits {
  private readonly limiters: Record<RateLimitedAction, RateLimiterPostgres>;

  /** Opens a small pool of its own to the database at `connectionString`. */
  static open(connectionString: string, rules: RateLimitRules): PortalRateLimits {
    const pool = new pg.Pool({ connectionString, max: 4 });
    // See `connect`: an idle connection the server ends must not end the process.
    pool.on('error', () => undefined);
    return new PortalRateLimits(pool, rules);
  }

  constructor(private readonly pool: pg.Pool, rules: RateLimitRules) {
    const limiter = (action: RateLimitedAction) =>
      new RateLimiterPostgres({
        storeClient: pool,
        storeType: 'pool',
        tableName: 'rate_limits',
        tableCreated: true,
        keyPrefix: `vome-${action}`,
        points: rules[action].points,
        duration: rules[action].durationSeconds,
      });
    this.limiters = { 'sign-in': limiter('sign-in'), redeem: limiter('redeem'), api: limiter('api') };
  }

  /** Closes the pool. */
  async close(): Promise<void> {
    await this.pool.end();
  }

  /**
   * Counts one request of an action for an address and an optional account.
   *
   * @throws the store's error when PostgreSQL cannot be reached.
   */
  async consume(action: RateLimitedAction, clientAddress: string, accountId?: string): Promise<RateLimitOutcome> {
    const keys = [`address:${rateLimitBucket(clientAddress)}`, ...(accountId ? [`account:${accountId}`] : [])];
    let retryAfterMs = 0;
    for (const key of keys) {
      try {
        await this.limiters[action].consume(key);
      } catch (error) {
        if (!(error instanceof RateLimiterRes)) {
          throw error;
        }
        retryAfterMs = Math.max(retryAfterMs, error.msBeforeNext);
      }
    }
    return retryAfterMs > 0 ? { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(retryAfterMs / 1000)) } : { allowed: true };
  }
}
