import { homedir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/config.js';
import { ConfigError } from '../../../src/errors/index.js';

function problemsOf(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).message;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('loadConfig', () => {
  it('applies the defaults', () => {
    expect(loadConfig({ VOME_HOME: '/srv/vome' })).toEqual({
      home: '/srv/vome',
      databaseUrl: undefined,
      embeddedPostgresPort: 54_329,
      sshKeyPath: undefined,
      sshConnectTimeoutMs: 10_000,
      shutdownGraceSeconds: 60,
      logLevel: 'silent',
      testKillAfterStep: undefined,
    });
  });

  it('reads every variable', () => {
    expect(
      loadConfig({
        VOME_HOME: '/srv/vome',
        DATABASE_URL: 'postgresql://vome@db.internal/vome',
        VOME_EMBEDDED_PG_PORT: '6543',
        VOME_SSH_KEY: '/etc/vome/id_ed25519',
        VOME_SSH_CONNECT_TIMEOUT_MS: '2500',
        VOME_SHUTDOWN_GRACE_SECONDS: '0',
        VOME_LOG_LEVEL: 'debug',
        VOME_TEST_KILL_AFTER_STEP: 'create:define-domain',
      }),
    ).toEqual({
      home: '/srv/vome',
      databaseUrl: 'postgresql://vome@db.internal/vome',
      embeddedPostgresPort: 6543,
      sshKeyPath: '/etc/vome/id_ed25519',
      sshConnectTimeoutMs: 2500,
      shutdownGraceSeconds: 0,
      logLevel: 'debug',
      testKillAfterStep: 'create:define-domain',
    });
  });

  it('accepts a postgres:// URL', () => {
    expect(loadConfig({ DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/vome' }).databaseUrl).toBe('postgres://u:p@127.0.0.1:5432/vome');
  });

  it('ignores unrelated variables', () => {
    expect(loadConfig({ VOME_HOME: '/srv/vome', PATH: '/usr/bin', VOME_UNKNOWN: 'x' }).home).toBe('/srv/vome');
  });

  it('puts the default home under /var/lib for root', () => {
    expect(loadConfig({ XDG_DATA_HOME: '/data' }, 0).home).toBe('/var/lib/vome/control');
  });

  it('puts the default home under XDG_DATA_HOME', () => {
    expect(loadConfig({ XDG_DATA_HOME: '/data' }, 1000).home).toBe('/data/vome');
  });

  it('puts the default home under ~/.local/share without XDG_DATA_HOME', () => {
    expect(loadConfig({ XDG_DATA_HOME: '' }, 1000).home).toBe(`${homedir()}/.local/share/vome`);
  });

  it.each([
    'DATABASE_URL',
    'VOME_EMBEDDED_PG_PORT',
    'VOME_SSH_KEY',
    'VOME_SSH_CONNECT_TIMEOUT_MS',
    'VOME_SHUTDOWN_GRACE_SECONDS',
    'VOME_LOG_LEVEL',
    'VOME_TEST_KILL_AFTER_STEP',
  ])('treats an empty %s as unset', (name) => {
    expect(loadConfig({ VOME_HOME: '/srv/vome', [name]: '' })).toEqual(loadConfig({ VOME_HOME: '/srv/vome' }));
  });

  it('treats an empty VOME_HOME as unset', () => {
    expect(loadConfig({ VOME_HOME: '', XDG_DATA_HOME: '/data' })).toEqual(loadConfig({ XDG_DATA_HOME: '/data' }));
  });

  it.each([
    ['DATABASE_URL', 'mysql://db/vome', 'DATABASE_URL must be a postgres:// or postgresql:// URL, or unset to use the embedded PostgreSQL'],
    ['DATABASE_URL', 'db.internal', 'DATABASE_URL must be a postgres:// or postgresql:// URL, or unset to use the embedded PostgreSQL'],
    ['VOME_EMBEDDED_PG_PORT', '80', 'VOME_EMBEDDED_PG_PORT must be a whole number between 1024 and 65535'],
    ['VOME_EMBEDDED_PG_PORT', '65536', 'VOME_EMBEDDED_PG_PORT must be a whole number between 1024 and 65535'],
    ['VOME_EMBEDDED_PG_PORT', 'abc', 'VOME_EMBEDDED_PG_PORT must be a whole number between 1024 and 65535'],
    ['VOME_EMBEDDED_PG_PORT', '5432.5', 'VOME_EMBEDDED_PG_PORT must be a whole number between 1024 and 65535'],
    ['VOME_SSH_CONNECT_TIMEOUT_MS', 'abc', 'VOME_SSH_CONNECT_TIMEOUT_MS must be a whole number of milliseconds'],
    ['VOME_SSH_CONNECT_TIMEOUT_MS', '1.5', 'VOME_SSH_CONNECT_TIMEOUT_MS must be a whole number of milliseconds'],
    ['VOME_SSH_CONNECT_TIMEOUT_MS', '0', 'VOME_SSH_CONNECT_TIMEOUT_MS must be greater than 0'],
    ['VOME_SSH_CONNECT_TIMEOUT_MS', '-5', 'VOME_SSH_CONNECT_TIMEOUT_MS must be greater than 0'],
    ['VOME_SHUTDOWN_GRACE_SECONDS', 'abc', 'VOME_SHUTDOWN_GRACE_SECONDS must be a whole number of seconds'],
    ['VOME_SHUTDOWN_GRACE_SECONDS', '2.5', 'VOME_SHUTDOWN_GRACE_SECONDS must be a whole number of seconds'],
    ['VOME_SHUTDOWN_GRACE_SECONDS', '-1', 'VOME_SHUTDOWN_GRACE_SECONDS must be 0 or more'],
    ['VOME_SHUTDOWN_GRACE_SECONDS', '3601', 'VOME_SHUTDOWN_GRACE_SECONDS must be at most 3600'],
    ['VOME_LOG_LEVEL', 'loud', 'VOME_LOG_LEVEL must be one of silent, fatal, error, warn, info, debug, trace'],
    ['VOME_LOG_LEVEL', 'INFO', 'VOME_LOG_LEVEL must be one of silent, fatal, error, warn, info, debug, trace'],
    ['VOME_TEST_KILL_AFTER_STEP', 'define-domain', 'VOME_TEST_KILL_AFTER_STEP must look like "create:define-domain"'],
  ])('rejects %s=%j', (name, value, rule) => {
    expect(problemsOf({ VOME_HOME: '/srv/vome', [name]: value })).toBe(`invalid settings in the environment: ${rule}`);
  });

  it('lists every invalid variable', () => {
    expect(problemsOf({ DATABASE_URL: 'mysql://db', VOME_LOG_LEVEL: 'loud' })).toBe(
      'invalid settings in the environment: DATABASE_URL must be a postgres:// or postgresql:// URL, or unset to use the embedded PostgreSQL; VOME_LOG_LEVEL must be one of silent, fatal, error, warn, info, debug, trace',
    );
  });

  it('raises ConfigError with code invalid_config and a hint', () => {
    try {
      loadConfig({ VOME_LOG_LEVEL: 'loud' });
      expect.unreachable('loadConfig accepted VOME_LOG_LEVEL=loud');
    } catch (error) {
      expect((error as ConfigError).code).toBe('invalid_config');
      expect((error as ConfigError).hints).toEqual(['fix or unset the variables named above']);
    }
  });
});
