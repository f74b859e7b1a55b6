import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import type { Db } from '../../packages/core/src/index.js';
import { TestDatabase } from '../../packages/core/test/support/test-database.js';
import { type FakeGitHub, startFakeGitHub } from './fake-github.js';

export const REPO = resolve(import.meta.dirname, '../..');
export const WEB_DIR = join(REPO, 'packages/web');
/** The origin the test portal believes it is served at. */
export const PORTAL_URL = 'https://portal.vome.test';
export const SESSION_SECRET = 'test-session-secret-0123456789-abcdefghijklmnop';
export const SESSION_COOKIE = '__Host-next-auth.session-token';

function newestChange(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) {
    return stat.mtimeMs;
  }
  return Math.max(stat.mtimeMs, ...readdirSync(path).map((entry) => newestChange(join(path, entry))));
}

/**
 * Builds the portal with `next build` when there is no build or a source
 * file (the portal's or core's compiled output) changed after it. A lock
 * folder keeps two test processes from building at once.
 */
export async function ensurePortalBuilt(): Promise<void> {
  const buildId = join(WEB_DIR, '.next/BUILD_ID');
  const lock = join(WEB_DIR, '.next-build-lock');
  const sources = [join(WEB_DIR, 'src'), join(WEB_DIR, 'next.config.mjs'), join(REPO, 'packages/core/dist')];
  const stale = () => !existsSync(buildId) || Math.max(...sources.map(newestChange)) > statSync(buildId).mtimeMs;
  if (!stale()) {
    return;
  }
  for (let waited = 0; ; waited += 500) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (waited > 180_000) {
        throw new Error(`another portal build has held ${lock} for 3 minutes; remove it if no build runs`);
      }
      await new Promise((wait) => setTimeout(wait, 500));
    }
  }
  try {
    if (stale()) {
      await execa('pnpm', ['exec', 'next', 'build'], { cwd: WEB_DIR, env: { NEXT_TELEMETRY_DISABLED: '1' }, stdio: 'inherit' });
    }
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** Returns a TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolvePort(port));
    });
    server.on('error', reject);
  });
}

export interface PortalProcess {
  /** http://127.0.0.1:<port>, where the portal listens. */
  localUrl: string;
  port: number;
  /** Moves the portal's clock: `shiftClock(12 * 3600_000)` is 12 hours ahead. */
  shiftClock(offsetMs: number): Promise<void>;
  /** Everything the process wrote to stdout and stderr. */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts the built portal (packages/web/server.mjs) on a free loopback port
 * with a moveable clock. `env` adds or overrides settings.
 */
export async function startPortal(env: Record<string, string>): Promise<PortalProcess> {
  const port = await freePort();
  const clockDir = await mkdtemp(join(tmpdir(), 'vome-portal-clock-'));
  const clockFile = join(clockDir, 'offset');
  await writeFile(clockFile, '0');
  let output = '';
  const child: ChildProcess = spawn(process.execPath, ['--import', join(REPO, 'test/support/shifted-clock.mjs'), 'server.mjs'], {
    cwd: WEB_DIR,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NODE_ENV: 'production',
      NEXT_TELEMETRY_DISABLED: '1',
      PORT: String(port),
      HOST: '127.0.0.1',
      VOME_PORTAL_URL: PORTAL_URL,
      VOME_SESSION_SECRET: SESSION_SECRET,
      VOME_TEST_CLOCK_FILE: clockFile,
      VOME_LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()));

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`the portal exited with ${child.exitCode} before listening:\n${output}`);
    }
    if (output.includes('portal listening')) {
      break;
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the portal did not listen within 60 s:\n${output}`);
    }
    await new Promise((wait) => setTimeout(wait, 100));
  }
  return {
    localUrl: `http://127.0.0.1:${port}`,
    port,
    shiftClock: (offsetMs) => writeFile(clockFile, String(offsetMs)),
    output: () => output,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((wait) => setTimeout(wait, 5000))]);
        if (child.exitCode === null) {
          child.kill('SIGKILL');
          await exited;
        }
      }
      await rm(clockDir, { recursive: true, force: true });
    },
  };
}

export interface HttpReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  setCookies: string[];
  location: string | undefined;
  body: string;
}

export interface HttpOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** Source address of the connection, e.g. 127.0.0.7, to act as another client. */
  localAddress?: string;
}

/** Sends one HTTP request with node:http (which, unlike fetch, can pick its source address). */
export async function httpCall(url: string, options: HttpOptions = {}): Promise<HttpReply> {
  return new Promise((resolveReply, reject) => {
    const request = httpRequest(
      url,
      { method: options.method ?? 'GET', headers: options.headers ?? {}, ...(options.localAddress ? { localAddress: options.localAddress } : {}) },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => {
          const cookies = response.headers['set-cookie'] ?? [];
          resolveReply({
            status: response.statusCode ?? 0,
            headers: response.headers,
            setCookies: cookies,
            location: response.headers.location,
            body,
          });
        });
      },
    );
    request.on('error', reject);
    request.end(options.body);
  });
}

/** A browser-like cookie jar for one client: keeps name=value pairs and sends them back. */
export class CookieJar {
  readonly cookies = new Map<string, string>();

  store(setCookies: string[]): void {
    for (const line of setCookies) {
      const [pair = ''] = line.split(';');
      const separator = pair.indexOf('=');
      const name = pair.slice(0, separator).trim();
      const value = pair.slice(separator + 1).trim();
      if (/;\s*max-age=0/i.test(line) || value === '') {
        this.cookies.delete(name);
      } else {
        this.cookies.set(name, value);
      }
    }
  }

  header(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }
}

/** A client of the test portal: maps the portal's public URL onto its loopback address and keeps cookies. */
export class PortalClient {
  readonly jar = new CookieJar();

  constructor(
    private readonly portal: PortalProcess,
    private readonly localAddress?: string,
  ) {}

  private local(url: string): string {
    return url.startsWith(PORTAL_URL) ? this.portal.localUrl + url.slice(PORTAL_URL.length) : url.startsWith('/') ? this.portal.localUrl + url : url;
  }

  /** Sends a request to a path or a portal URL with this client's cookies. */
  async call(path: string, options: HttpOptions = {}): Promise<HttpReply> {
    const headers: Record<string, string> = { ...options.headers };
    const cookie = this.jar.header();
    if (cookie) {
      headers.cookie = cookie;
    }
    const reply = await httpCall(this.local(path), { ...options, headers, ...(this.localAddress ? { localAddress: this.localAddress } : {}) });
    this.jar.store(reply.setCookies);
    return reply;
  }

  /** Posts a form as a browser on the portal's own origin would, asking for JSON. */
  async post(path: string, fields: Record<string, string>, headers: Record<string, string> = {}): Promise<HttpReply> {
    return this.call(path, {
      method: 'POST',
      headers: { origin: PORTAL_URL, accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams(fields).toString(),
    });
  }

  /**
   * Signs in through the whole OAuth flow against the fake GitHub: the
   * sign-in form, GitHub's authorize redirect, the callback. Returns the
   * callback's reply (a redirect to the dashboard, or to /signin?refused=…).
   */
  async signIn(): Promise<HttpReply> {
    const start = await this.call('/signin/github', { method: 'POST', headers: { origin: PORTAL_URL, accept: 'text/html' } });
    if (start.status !== 302 || !start.location) {
      throw new Error(`sign-in did not redirect to GitHub: ${start.status} ${start.body.slice(0, 300)}`);
    }
    const authorize = await httpCall(start.location);
    if (authorize.status !== 302 || !authorize.location) {
      throw new Error(`GitHub's authorize did not redirect back: ${authorize.status} ${authorize.body.slice(0, 300)}`);
    }
    return this.call(authorize.location);
  }

  /** Returns the session cookie's value, if signed in. */
  sessionCookie(): string | undefined {
    return this.jar.cookies.get(SESSION_COOKIE);
  }
}

/** Returns the settings that point a portal at the GitHub double. */
export function gitHubSettings(github: FakeGitHub): Record<string, string> {
  return {
    GITHUB_CLIENT_ID: github.clientId,
    GITHUB_CLIENT_SECRET: github.clientSecret,
    VOME_GITHUB_URL: github.webUrl,
    VOME_GITHUB_API_URL: github.apiUrl,
  };
}

/** A fresh database, the GitHub double and a portal wired to both. */
export interface PortalStack {
  db: Db;
  databaseUrl: string;
  github: FakeGitHub;
  portal: PortalProcess;
  /** Stops the portal, the double and the database, in that order. */
  stop(): Promise<void>;
}

/**
 * Builds the portal when needed, then starts an empty migrated database,
 * the GitHub double accepting the portal's callback, and the portal on
 * both. `env` adds or overrides portal settings. Whatever started is
 * stopped again when a later part fails.
 */
export async function startPortalStack(env: Record<string, string> = {}): Promise<PortalStack> {
  await ensurePortalBuilt();
  const database = new TestDatabase();
  let github: FakeGitHub | undefined;
  try {
    await database.start();
    const { db, url } = await database.freshWithUrl();
    github = await startFakeGitHub({ allowedRedirectPrefix: `${PORTAL_URL}/api/auth/callback/github` });
    const portal = await startPortal({ DATABASE_URL: url, ...gitHubSettings(github), ...env });
    const started = github;
    return {
      db,
      databaseUrl: url,
      github: started,
      portal,
      async stop() {
        await portal.stop();
        await started.close();
        await database.stop();
      },
    };
  } catch (error) {
    await github?.close();
    await database.stop();
    throw error;
  }
}
