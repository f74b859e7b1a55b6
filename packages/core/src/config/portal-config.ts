import type { BlockList } from 'node:net';
import { z } from 'zod';
import { ConfigError, InvalidInputError } from '../errors/index.js';
import { parseTrustedProxies } from '../identity/client-address.js';
import type { RateLimitRule, RateLimitRules } from '../identity/rate-limits.js';

const RATE_RULE = /^(\d+)\/(\d+)s$/;

function parseRule(value: string): RateLimitRule {
  const [, points, seconds] = RATE_RULE.exec(value) ?? [];
  return { points: Number(points), durationSeconds: Number(seconds) };
}

const rateLimit = (name: string, fallback: string) =>
  z
    .string()
    .regex(RATE_RULE, `${name} must look like "10/60s": at most 10 requests per 60 seconds`)
    // rate-limiter-flexible reads 0 points as "reject all" and 0 seconds as "never reset".
    .refine((value) => !RATE_RULE.test(value) || (parseRule(value).points >= 1 && parseRule(value).durationSeconds >= 1), `${name} needs at least 1 request and at least 1 second, e.g. "10/60s"`)
    .default(fallback);

const httpUrl = (name: string) =>
  z
    .string()
    .url(`${name} must be a URL such as https://github.com`)
    .refine((value) => /^https?:\/\//.test(value), `${name} must start with https:// or http://`);

const portalSchema = z.object({
  VOME_PORTAL_URL: z
    .string({ error: 'VOME_PORTAL_URL is missing: set it to the portal address customers use, e.g. https://portal.example.org' })
    .url('VOME_PORTAL_URL must be a URL such as https://portal.example.org')
    .refine((value) => value.startsWith('https://'), 'VOME_PORTAL_URL must start with https://, because session cookies are only sent over HTTPS'),
  VOME_SESSION_SECRET: z
    .string({ error: 'VOME_SESSION_SECRET is missing: set it to at least 32 random characters, e.g. from `openssl rand -base64 48`' })
    .min(32, 'VOME_SESSION_SECRET must be at least 32 characters: use `openssl rand -base64 48`'),
  GITHUB_CLIENT_ID: z.string({ error: "GITHUB_CLIENT_ID is missing: set it to the client ID of vome's GitHub OAuth app" }).min(1),
  GITHUB_CLIENT_SECRET: z.string({ error: "GITHUB_CLIENT_SECRET is missing: set it to the client secret of vome's GitHub OAuth app" }).min(1),
  VOME_GITHUB_URL: httpUrl('VOME_GITHUB_URL').default('https://github.com'),
  VOME_GITHUB_API_URL: httpUrl('VOME_GITHUB_API_URL').default('https://api.github.com'),
  VOME_GITHUB_MIN_AGE_DAYS: z.coerce
    .number({ error: 'VOME_GITHUB_MIN_AGE_DAYS must be a whole number of days' })
    .int('VOME_GITHUB_MIN_AGE_DAYS must be a whole number of days')
    .min(0, 'VOME_GITHUB_MIN_AGE_DAYS must be 0 or more')
    .max(3650, 'VOME_GITHUB_MIN_AGE_DAYS must be at most 3650')
    .default(30),
  VOME_TRUSTED_PROXIES: z.string().default('127.0.0.1,::1'),
  VOME_RATE_LIMIT_SIGN_IN: rateLimit('VOME_RATE_LIMIT_SIGN_IN', '10/60s'),
  VOME_RATE_LIMIT_REDEEM: rateLimit('VOME_RATE_LIMIT_REDEEM', '5/300s'),
  VOME_RATE_LIMIT_API: rateLimit('VOME_RATE_LIMIT_API', '120/60s'),
  VOME_PORTAL_ADMIN_GITHUB_IDS: z
    .string()
    .regex(/^\s*(\d+\s*(,\s*\d+\s*)*)?$/, 'VOME_PORTAL_ADMIN_GITHUB_IDS must be a comma-separated list of numeric GitHub user ids')
    .default(''),
  VOME_PORTAL_HOST: z.string().min(1).optional(),
  VOME_PORTAL_IMAGE: z.string().min(1).optional(),
});

/** The portal's settings, read from the environment and validated. */
export interface PortalConfig {
  /** The origin customers use; the OAuth callback and CSRF origin check derive from it. */
  portalUrl: string;
  /** Signs session tokens and derives CSRF tokens. Never logged. */
  sessionSecret: string;
  githubClientId: string;
  githubClientSecret: string;
  /** GitHub's web origin, for the authorize and token endpoints. */
  githubUrl: string;
  githubApiUrl: string;
  /** A GitHub account younger than this may not sign in. */
  minGitHubAgeMs: number;
  /** Proxies whose X-Forwarded-For is believed. */
  trustedProxies: BlockList;
  rateLimits: RateLimitRules;
  /** GitHub user ids that act as admins in the portal. */
  adminGitHubIds: ReadonlySet<number>;
  /** Host for servers created from the portal; unset picks the host with the fewest servers. */
  defaultHost: string | undefined;
  /** Image for servers created from the portal; unset picks the newest image. */
  defaultImage: string | undefined;
}

/**
 * Reads and validates the portal's settings from an environment.
 *
 * @throws ConfigError naming each invalid or missing variable and what to set.
 */
export function loadPortalConfig(env: Readonly<Record<string, string | undefined>> = process.env): PortalConfig {
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const parsed = portalSchema.safeParse(present);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const variable = issue.path.join('.');
      return issue.message.includes(variable) ? issue.message : `${variable}: ${issue.message}`;
    });
    throw new ConfigError(`invalid portal settings in the environment: ${problems.join('; ')}`, {
      hints: ['set or fix the variables named above; the README lists them all'],
    });
  }
  const values = parsed.data;
  let trustedProxies: BlockList;
  try {
    trustedProxies = parseTrustedProxies(values.VOME_TRUSTED_PROXIES);
  } catch (error) {
    if (error instanceof InvalidInputError) {
      throw new ConfigError(`VOME_TRUSTED_PROXIES: ${error.message}`);
    }
    throw error;
  }
  return {
    portalUrl: new URL(values.VOME_PORTAL_URL).origin,
    sessionSecret: values.VOME_SESSION_SECRET,
    githubClientId: values.GITHUB_CLIENT_ID,
    githubClientSecret: values.GITHUB_CLIENT_SECRET,
    githubUrl: values.VOME_GITHUB_URL.replace(/\/$/, ''),
    githubApiUrl: values.VOME_GITHUB_API_URL.replace(/\/$/, ''),
    minGitHubAgeMs: values.VOME_GITHUB_MIN_AGE_DAYS * 86_400_000,
    trustedProxies,
    rateLimits: {
      'sign-in': parseRule(values.VOME_RATE_LIMIT_SIGN_IN),
      redeem: parseRule(values.VOME_RATE_LIMIT_REDEEM),
      api: parseRule(values.VOME_RATE_LIMIT_API),
    },
    adminGitHubIds: new Set(values.VOME_PORTAL_ADMIN_GITHUB_IDS.split(',').map((id) => id.trim()).filter((id) => id !== '').map(Number)),
    defaultHost: values.VOME_PORTAL_HOST,
    defaultImage: values.VOME_PORTAL_IMAGE,
  };
}
