import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../errors/index.js';

const LOG_LEVELS = ['silent', 'fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;

const positiveMs = (name: string) =>
  z.coerce
    .number({ error: `${name} must be a whole number of milliseconds` })
    .int(`${name} must be a whole number of milliseconds`)
    .positive(`${name} must be greater than 0`);

const PORT_RULE = 'VOME_EMBEDDED_PG_PORT must be a whole number between 1024 and 65535';

const environmentSchema = z.object({
  VOME_HOME: z.string().min(1, 'VOME_HOME must not be empty: set a folder path, or unset it').optional(),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'DATABASE_URL must be a postgres:// or postgresql:// URL, or unset to use the embedded PostgreSQL')
    .optional(),
  VOME_EMBEDDED_PG_PORT: z.coerce
    .number({ error: PORT_RULE })
    .int(PORT_RULE)
    .min(1024, PORT_RULE)
    .max(65535, PORT_RULE)
    .default(54329),
  VOME_SSH_KEY: z.string().min(1).optional(),
  VOME_SSH_CONNECT_TIMEOUT_MS: positiveMs('VOME_SSH_CONNECT_TIMEOUT_MS').default(10_000),
  VOME_SHUTDOWN_GRACE_SECONDS: z.coerce
    .number({ error: 'VOME_SHUTDOWN_GRACE_SECONDS must be a whole number of seconds' })
    .int('VOME_SHUTDOWN_GRACE_SECONDS must be a whole number of seconds')
    .min(0, 'VOME_SHUTDOWN_GRACE_SECONDS must be 0 or more')
    .max(3600, 'VOME_SHUTDOWN_GRACE_SECONDS must be at most 3600')
    .default(60),
  VOME_LOG_LEVEL: z.enum(LOG_LEVELS, { error: `VOME_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}` }).default('silent'),
  VOME_TEST_KILL_AFTER_STEP: z
    .string()
    .regex(/^[a-z]+:[a-z-]+$/, 'VOME_TEST_KILL_AFTER_STEP must look like "create:define-domain"')
    .optional(),
});

/** vome's settings, read once from the environment and validated. */
export interface VomeConfig {
  /** Folder for the embedded PostgreSQL and downloaded images. */
  home: string;
  /** External PostgreSQL; absent means the embedded server under `home`. */
  databaseUrl: string | undefined;
  embeddedPostgresPort: number;
  /** Private key used for every SSH host. */
  sshKeyPath: string | undefined;
  sshConnectTimeoutMs: number;
  /** Seconds a guest gets to power off after an ACPI shutdown before a hard stop. */
  shutdownGraceSeconds: number;
  logLevel: (typeof LOG_LEVELS)[number];
  /**
   * Test hook: `<operation>:<step>` makes the process kill itself right after
   * that step is recorded as done, to prove that a re-run finishes the work.
   */
  testKillAfterStep: string | undefined;
}

/**
 * Picks VOME_HOME when unset: the user's data folder, or for root a folder
 * under /var/lib, because the embedded PostgreSQL runs as the `postgres`
 * user and cannot pass through root's 0700 home folder.
 */
function defaultHome(env: Readonly<Record<string, string | undefined>>, uid: number | undefined): string {
  if (uid === 0) {
    return '/var/lib/vome/control';
  }
  const dataHome = env.XDG_DATA_HOME && env.XDG_DATA_HOME.length > 0 ? env.XDG_DATA_HOME : join(homedir(), '.local', 'share');
  return join(dataHome, 'vome');
}

/**
 * Reads and validates vome's settings from an environment.
 *
 * @throws ConfigError naming each invalid variable and the rule it breaks.
 */
export function loadConfig(env: Readonly<Record<string, string | undefined>> = process.env, uid: number | undefined = process.getuid?.()): VomeConfig {
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const parsed = environmentSchema.safeParse(present);
  if (!parsed.success) {
    // Each message names its variable already, except zod's generic ones.
    const problems = parsed.error.issues.map((issue) => {
      const variable = issue.path.join('.');
      return issue.message.includes(variable) ? issue.message : `${variable}: ${issue.message}`;
    });
    throw new ConfigError(`invalid settings in the environment: ${problems.join('; ')}`, {
      hints: ['fix or unset the variables named above'],
    });
  }

  const values = parsed.data;
  return {
    home: values.VOME_HOME ?? defaultHome(env, uid),
    databaseUrl: values.DATABASE_URL,
    embeddedPostgresPort: values.VOME_EMBEDDED_PG_PORT,
    sshKeyPath: values.VOME_SSH_KEY,
    sshConnectTimeoutMs: values.VOME_SSH_CONNECT_TIMEOUT_MS,
    shutdownGraceSeconds: values.VOME_SHUTDOWN_GRACE_SECONDS,
    logLevel: values.VOME_LOG_LEVEL,
    testKillAfterStep: values.VOME_TEST_KILL_AFTER_STEP,
  };
}
