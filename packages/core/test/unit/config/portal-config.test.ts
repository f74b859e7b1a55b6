import { describe, expect, it } from 'vitest';
import { loadPortalConfig } from '../../../src/config/portal-config.js';
import { ConfigError } from '../../../src/errors/index.js';

const REQUIRED = {
  VOME_PORTAL_URL: 'https://portal.example.org/',
  VOME_SESSION_SECRET: 's'.repeat(32),
  GITHUB_CLIENT_ID: 'client-id',
  GITHUB_CLIENT_SECRET: 'client-secret',
};

function failure(env: Record<string, string>): ConfigError {
  try {
    loadPortalConfig(env);
  } catch (error) {
    return error as ConfigError;
  }
  throw new Error('expected loadPortalConfig to throw');
}

describe('loadPortalConfig', () => {
  it('applies the defaults', () => {
    const config = loadPortalConfig(REQUIRED);
    expect(config.portalUrl).toBe('https://portal.example.org');
    expect(config.githubUrl).toBe('https://github.com');
    expect(config.githubApiUrl).toBe('https://api.github.com');
    expect(config.minGitHubAgeMs).toBe(30 * 86_400_000);
    expect(config.rateLimits).toEqual({
      'sign-in': { points: 10, durationSeconds: 60 },
      redeem: { points: 5, durationSeconds: 300 },
      api: { points: 120, durationSeconds: 60 },
    });
    expect([...config.adminGitHubIds]).toEqual([]);
    expect(config.trustedProxies.check('127.0.0.1')).toBe(true);
    expect(config.trustedProxies.check('::1', 'ipv6')).toBe(true);
    expect(config.trustedProxies.check('10.0.0.1')).toBe(false);
  });

  it('reads every setting', () => {
    const config = loadPortalConfig({
      ...REQUIRED,
      VOME_GITHUB_URL: 'http://127.0.0.1:4000/',
      VOME_GITHUB_API_URL: 'http://127.0.0.1:4000/api/v3',
      VOME_GITHUB_MIN_AGE_DAYS: '0',
      VOME_TRUSTED_PROXIES: '10.0.0.0/8, fd00::/8',
      VOME_RATE_LIMIT_API: '7/30s',
      VOME_PORTAL_ADMIN_GITHUB_IDS: '12, 34',
      VOME_PORTAL_HOST: 'ha-1',
      VOME_PORTAL_IMAGE: 'haos-16',
    });
    expect(config.githubUrl).toBe('http://127.0.0.1:4000');
    expect(config.githubApiUrl).toBe('http://127.0.0.1:4000/api/v3');
    expect(config.minGitHubAgeMs).toBe(0);
    expect(config.trustedProxies.check('10.9.9.9')).toBe(true);
    expect(config.trustedProxies.check('fd00::5', 'ipv6')).toBe(true);
    expect(config.trustedProxies.check('127.0.0.1')).toBe(false);
    expect(config.rateLimits.api).toEqual({ points: 7, durationSeconds: 30 });
    expect([...config.adminGitHubIds]).toEqual([12, 34]);
    expect(config.defaultHost).toBe('ha-1');
    expect(config.defaultImage).toBe('haos-16');
  });

  it('names every missing required setting', () => {
    const error = failure({});
    expect(error).toBeInstanceOf(ConfigError);
    for (const variable of Object.keys(REQUIRED)) {
      expect(error.message).toContain(`${variable} is missing`);
    }
  });

  it.each([
    ['a plain-HTTP portal URL', { VOME_PORTAL_URL: 'http://portal.example.org' }, 'VOME_PORTAL_URL must start with https://'],
    ['a short session secret', { VOME_SESSION_SECRET: 'short' }, 'VOME_SESSION_SECRET must be at least 32 characters'],
    ['a malformed rate limit', { VOME_RATE_LIMIT_SIGN_IN: '10 per minute' }, 'VOME_RATE_LIMIT_SIGN_IN must look like "10/60s"'],
    ['a limit of no requests', { VOME_RATE_LIMIT_API: '0/60s' }, 'VOME_RATE_LIMIT_API needs at least 1 request and at least 1 second'],
    ['a limit of no seconds', { VOME_RATE_LIMIT_REDEEM: '1/0s' }, 'VOME_RATE_LIMIT_REDEEM needs at least 1 request and at least 1 second'],
    ['a login as admin id', { VOME_PORTAL_ADMIN_GITHUB_IDS: 'octocat' }, 'VOME_PORTAL_ADMIN_GITHUB_IDS must be a comma-separated list of numeric GitHub user ids'],
    ['a fractional minimum age', { VOME_GITHUB_MIN_AGE_DAYS: '1.5' }, 'VOME_GITHUB_MIN_AGE_DAYS must be a whole number of days'],
    ['a host name as proxy', { VOME_TRUSTED_PROXIES: 'proxy.internal' }, 'invalid trusted proxy "proxy.internal"'],
    ['an oversized proxy prefix', { VOME_TRUSTED_PROXIES: '10.0.0.0/33' }, 'invalid trusted proxy "10.0.0.0/33"'],
  ])('rejects %s', (_, override, message) => {
    const error = failure({ ...REQUIRED, ...override });
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toContain(message);
  });

  it('keeps the secrets out of its messages', () => {
    const error = failure({ ...REQUIRED, VOME_PORTAL_URL: 'ftp://x', GITHUB_CLIENT_SECRET: 'very-secret-value' });
    expect(error.message).not.toContain('very-secret-value');
    expect(error.message).not.toContain(REQUIRED.VOME_SESSION_SECRET);
  });
});
