import { type ChildProcess, spawn } from 'node:child_process';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { execa } from 'execa';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasCommand, requirement } from '../../packages/core/test/support/requirements.js';
import { e2eAvailable, type E2eSetup, setUpVome } from '../support/e2e-fixture.js';
import { type FakeGitHub, startFakeGitHub } from '../support/fake-github.js';
import { ensurePortalBuilt, freePort, gitHubSettings, httpCall, type PortalProcess, REPO, startPortal } from '../support/portal.js';
import { type PortalProxy, startPortalProxy } from '../support/portal-proxy.js';

// Sign in with GitHub in a real Chromium, behind a real nginx, redeem a code,
// let `vome worker` create the server on the test host, and stop and start it
// from the server page. Addresses 10.232.0.180–189 belong to this file.

const CHROMIUM = '/usr/bin/chromium';
const PORTAL_HOST = 'portal.vome.test';
const DAY_MS = 86_400_000;

const host = await e2eAvailable();
const browserPresent = host !== undefined && requirement(hasCommand('chromium') && hasCommand('nginx'), 'the portal tests need chromium and nginx: run scripts/setup.sh');

let setup: E2eSetup;
let github: FakeGitHub;
let portal: PortalProcess;
let proxy: PortalProxy;
let worker: ChildProcess;
let workerOutput = '';
let browser: Browser;
let context: BrowserContext;
let page: Page;
let code: string;
const cspViolations: string[] = [];

async function domainState(name: string): Promise<string> {
  const result = await execa('virsh', ['-q', '-c', 'qemu:///system', 'domstate', `vome-${name}`], { reject: false });
  return result.stdout.trim();
}

/** Reloads a page until the first element with a test id reads `text`, for up to `timeoutMs`. */
async function waitForText(target: Page, testId: string, text: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const shown = await target.getByTestId(testId).first().textContent().catch(() => null);
    if (shown?.trim() === text) {
      return;
    }
    if (Date.now() > deadline) {
      throw new Error(`the page still shows "${shown}" after ${timeoutMs} ms, not "${text}"\nworker output:\n${workerOutput.slice(-3000)}`);
    }
    await target.waitForTimeout(1000);
    await target.reload();
  }
}

/** Reloads a page until its server state reads `state`. */
async function waitForState(target: Page, state: string, timeoutMs: number): Promise<void> {
  await waitForText(target, 'state', state, timeoutMs);
}

/** Sends a request through nginx with Node's https client, trusting the proxy's certificate. */
async function viaProxy(path: string, method: string, headers: Record<string, string>): Promise<{ status: number; setCookies: string[] }> {
  const { readFile } = await import('node:fs/promises');
  const ca = await readFile(proxy.certificatePath);
  return new Promise((resolveReply, reject) => {
    const request = httpsRequest(
      { host: '127.0.0.1', port: proxy.port, path, method, headers: { host: `${PORTAL_HOST}:${proxy.port}`, ...headers }, servername: PORTAL_HOST, ca },
      (response) => {
        response.resume();
        response.on('end', () => resolveReply({ status: response.statusCode ?? 0, setCookies: response.headers['set-cookie'] ?? [] }));
      },
    );
    request.on('error', reject);
    request.end();
  });
}

/** Reduces a Set-Cookie line to its name and flags, because value and expiry differ between any two responses. */
function cookieShape(line: string): string {
  const [pair = '', ...attributes] = line.split(';').map((part) => part.trim());
  const name = pair.slice(0, pair.indexOf('='));
  return [name, ...attributes.filter((attribute) => !/^(expires|max-age)=/i.test(attribute)).map((attribute) => attribute.toLowerCase()).sort()].join('; ');
}

describe.skipIf(!browserPresent)('portal in a browser', () => {
  beforeAll(async () => {
    await ensurePortalBuilt();
    setup = await setUpVome(host as NonNullable<typeof host>, 'portal-host', { start: '10.232.0.180', end: '10.232.0.189' });
    code = (await setup.cli.json<{ code: string }>(['code', 'create', '--plan', 'home', '--trial-days', '14', '--expires', new Date(Date.now() + 7 * DAY_MS).toISOString()])).code;

    const proxyPort = await freePort();
    const portalUrl = `https://${PORTAL_HOST}:${proxyPort}`;
    github = await startFakeGitHub({ allowedRedirectPrefix: `${portalUrl}/api/auth/callback/github` });
    github.addUser({
      id: 424242,
      login: 'household-gh',
      name: 'Test Household',
      email: null,
      createdAt: new Date(Date.now() - 400 * DAY_MS),
      emails: [{ email: 'household@example.org', primary: true, verified: true, visibility: 'private' }],
    });
    github.signInAs('household-gh');

    portal = await startPortal({
      ...setup.cli.env,
      VOME_PORTAL_URL: portalUrl,
      ...gitHubSettings(github),
    });
    proxy = await startPortalProxy(PORTAL_HOST, portal.port, proxyPort);

    worker = spawn(process.execPath, [join(REPO, 'packages/cli/bin/run.js'), 'worker', '--log-level', 'info'], {
      env: {
        ...process.env,
        ...setup.cli.env,
        DATABASE_URL: '',
        VOME_PORTAL_HOST: setup.hostName,
        VOME_PORTAL_IMAGE: setup.image,
        VOME_PORTAL_VCPUS: '1',
        VOME_PORTAL_MEMORY_MIB: '512',
        VOME_PORTAL_DISK_GIB: '1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    worker.stdout?.on('data', (chunk: Buffer) => (workerOutput += chunk.toString()));
    worker.stderr?.on('data', (chunk: Buffer) => (workerOutput += chunk.toString()));

    // Playwright gives the browser a fresh temporary profile of its own.
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-quic',
        `--host-resolver-rules=MAP ${PORTAL_HOST} 127.0.0.1`,
      ],
    });
    context = await browser.newContext({ ignoreHTTPSErrors: true });
    page = await context.newPage();
    page.on('console', (message) => {
      if (message.text().includes('Content Security Policy')) {
        cspViolations.push(message.text());
      }
    });
  });

  afterAll(async () => {
    await browser?.close();
    if (worker && worker.exitCode === null) {
      worker.kill('SIGTERM');
      await new Promise((resolveExit) => worker.once('exit', resolveExit));
    }
    const servers = setup ? await setup.cli.json<{ servers: Array<{ name: string }> }>(['server', 'list']).catch(() => ({ servers: [] })) : { servers: [] };
    for (const server of servers.servers) {
      await setup.cli.run(['server', 'destroy', server.name, '--yes']);
    }
    await proxy?.stop();
    await portal?.stop();
    await github?.close();
    await setup?.cli.dispose();
  });

  it('signs in with GitHub through nginx', async () => {
    await page.goto(`${proxy.url}/dashboard`);
    expect(new URL(page.url()).pathname).toBe('/signin');
    await page.getByRole('button', { name: 'Sign in with GitHub' }).click();
    await page.waitForURL(`${proxy.url}/dashboard`);
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Your servers');
  });

  it('sets the session cookie secure, HttpOnly and Lax', async () => {
    const cookie = (await context.cookies(proxy.url)).find((entry) => entry.name === '__Host-next-auth.session-token');
    expect(cookie?.httpOnly).toBe(true);
    expect(cookie?.secure).toBe(true);
    expect(cookie?.sameSite).toBe('Lax');
    expect(cookie?.path).toBe('/');
  });

  it('keeps cookie names and flags behind nginx', async () => {
    const headers = { origin: `https://${PORTAL_HOST}:${proxy.port}`, accept: 'text/html' };
    const behind = await viaProxy('/signin/github', 'POST', headers);
    const direct = await httpCall(`${portal.localUrl}/signin/github`, { method: 'POST', headers });
    expect(behind.status).toBe(302);
    expect(direct.status).toBe(302);
    expect(behind.setCookies.map(cookieShape).sort()).toEqual(direct.setCookies.map(cookieShape).sort());
    expect(behind.setCookies.length).toBe(3);
  });

  it('redeems a code and the worker creates the server', async () => {
    await page.getByRole('navigation').getByRole('link', { name: 'Redeem a code' }).click();
    await page.getByLabel('Code').fill(code.toLowerCase().replaceAll('-', ''));
    await page.getByRole('button', { name: 'Redeem' }).click();
    await page.waitForURL(`${proxy.url}/dashboard`);
    await expect(page.getByRole('status').first().textContent()).resolves.toContain('Code accepted');
    await waitForState(page, 'running', 240_000);
    await expect(domainState('household-gh')).resolves.toBe('running');
  });

  it('stops and starts the server from its page', async () => {
    await page.getByRole('link', { name: 'household-gh', exact: true }).click();
    await expect(page.getByTestId('state').textContent()).resolves.toBe('running');
    await page.getByRole('button', { name: 'Stop', exact: true }).click();
    await waitForState(page, 'stopped', 180_000);
    await expect(domainState('household-gh')).resolves.toBe('shut off');
    await page.getByRole('button', { name: 'Start', exact: true }).click();
    await waitForState(page, 'running', 180_000);
    await expect(domainState('household-gh')).resolves.toBe('running');
    await expect(page.getByRole('heading', { name: /^start: succeeded/ }).count()).resolves.toBe(1);
  });

  it('restarts the server without JavaScript', async () => {
    // A second browser with scripts off signs in and uses the plain forms.
    const plain = await browser.newContext({ ignoreHTTPSErrors: true, javaScriptEnabled: false });
    const plainPage = await plain.newPage();
    await plainPage.goto(`${proxy.url}/signin`);
    await plainPage.getByRole('button', { name: 'Sign in with GitHub' }).click();
    await plainPage.waitForURL(`${proxy.url}/dashboard`);
    await plainPage.getByRole('link', { name: 'household-gh', exact: true }).click();
    await plainPage.getByRole('button', { name: 'Restart', exact: true }).click();
    await expect(plainPage.getByRole('status').first().textContent()).resolves.toBe('Your server is restarting.');
    await waitForText(plainPage, 'request-state', 'succeeded', 180_000);
    await expect(plainPage.getByTestId('state').textContent()).resolves.toBe('running');
    await expect(domainState('household-gh')).resolves.toBe('running');
    await plain.close();
  });

  it('runs nonce scripts with no CSP violation', async () => {
    // Next.js's inline flight-data scripts carry the nonce; they ran if their array exists.
    await expect(page.evaluate(() => Array.isArray((globalThis as unknown as { __next_f?: unknown }).__next_f))).resolves.toBe(true);
    expect(cspViolations).toEqual([]);
  });
});
