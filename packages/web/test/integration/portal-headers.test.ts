import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csrfTokenFor } from '../../../core/src/index.js';
import { type FakeGitHub } from '../../../../test/support/fake-github.js';
import { type HttpReply, PORTAL_URL, PortalClient, type PortalProcess, type PortalStack, SESSION_SECRET, startPortalStack } from '../../../../test/support/portal.js';

// The values that packages/web/next.config.mjs sets on every response.
const SECURITY_HEADERS = {
  'strict-transport-security': 'max-age=63072000; includeSubDomains',
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'strict-origin-when-cross-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()',
};

let stack: PortalStack;
let github: FakeGitHub;
let portal: PortalProcess;
let customer: PortalClient;
let customerCsrf: string;

/** Splits a Content-Security-Policy into its directives, keyed by name. */
function directivesOf(policy: string): Map<string, string[]> {
  const directives = new Map<string, string[]>();
  for (const directive of policy.split(';')) {
    const [name, ...sources] = directive.trim().split(/\s+/);
    if (name) {
      directives.set(name.toLowerCase(), sources);
    }
  }
  return directives;
}

/** Returns the nonce of a reply's script-src, or undefined without one. */
function nonceOf(reply: HttpReply): string | undefined {
  const scriptSources = directivesOf(String(reply.headers['content-security-policy'] ?? '')).get('script-src') ?? [];
  const nonceSource = scriptSources.find((source) => source.startsWith("'nonce-") && source.endsWith("'"));
  return nonceSource?.slice("'nonce-".length, -1);
}

/** Fetches a page as a browser would: anonymously, or as the signed-in customer for /dashboard. */
function fetchPage(path: string): Promise<HttpReply> {
  const client = path === '/dashboard' ? customer : new PortalClient(portal);
  return client.call(path, { headers: { accept: 'text/html' } });
}

beforeAll(async () => {
  stack = await startPortalStack();
  ({ github, portal } = stack);

  github.addUser({
    id: 301,
    login: 'hedy',
    name: 'Hedy Lamarr',
    email: null,
    createdAt: new Date(Date.now() - 400 * 86_400_000),
    emails: [{ email: 'hedy@example.org', primary: true, verified: true, visibility: 'private' }],
  });
  github.signInAs('hedy');
  customer = new PortalClient(portal, '127.0.0.9');
  const signedIn = await customer.signIn();
  if (signedIn.location !== `${PORTAL_URL}/dashboard`) {
    throw new Error(`hedy could not sign in: ${signedIn.status} ${signedIn.location ?? ''}`);
  }
  const session = await stack.db.selectFrom('portal_sessions').select('id').executeTakeFirstOrThrow();
  customerCsrf = csrfTokenFor(SESSION_SECRET, session.id);
});

afterAll(async () => {
  await stack?.stop();
});

describe('page headers', () => {
  it.each(['/signin', '/about', '/dashboard'])('sets security headers on %s', async (path) => {
    const reply = await fetchPage(path);

    expect(reply.status).toBe(200);
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) {
      expect(reply.headers[name], name).toBe(value);
    }
    expect(reply.headers['x-powered-by']).toBeUndefined();
  });

  it.each(['/signin', '/about', '/dashboard'])('sets a nonce policy on %s', async (path) => {
    const reply = await fetchPage(path);
    const directives = directivesOf(String(reply.headers['content-security-policy'] ?? ''));
    const scriptSources = directives.get('script-src') ?? [];

    expect(nonceOf(reply)).toMatch(/^[A-Za-z0-9+/]{22}==$/);
    expect(scriptSources).not.toContain("'unsafe-inline'");
    expect(scriptSources).not.toContain("'unsafe-eval'");
    expect(directives.get('frame-ancestors')).toEqual(["'none'"]);
    expect(directives.get('object-src')).toEqual(["'none'"]);
    // The sign-in form's response redirects to GitHub's authorize page.
    expect(directives.get('form-action')).toEqual(["'self'", github.webUrl]);
  });

  it.each(['/signin', '/about', '/dashboard'])('nonces every script on %s', async (path) => {
    const reply = await fetchPage(path);
    const nonce = nonceOf(reply);
    const scriptTags = reply.body.match(/<script\b[^>]*>/gi) ?? [];

    expect(nonce).toBeDefined();
    expect(scriptTags.length).toBeGreaterThan(0);
    for (const tag of scriptTags) {
      expect(tag).toContain(` nonce="${nonce}"`);
    }
  });

  it.each(['/signin', '/about', '/dashboard'])('draws a new nonce per request on %s', async (path) => {
    const first = nonceOf(await fetchPage(path));
    const second = nonceOf(await fetchPage(path));

    expect(first).toBeDefined();
    expect(second).toBeDefined();
    expect(second).not.toBe(first);
  });
});

describe('static asset headers', () => {
  it('sets HSTS and nosniff on a script', async () => {
    const page = await fetchPage('/about');
    const source = /<script\b[^>]*\bsrc="(\/_next\/static\/[^"]+\.js)"/.exec(page.body)?.[1];
    expect(source).toBeDefined();

    const asset = await new PortalClient(portal).call(source!);
    expect(asset.status).toBe(200);
    expect(asset.headers['content-type']).toMatch(/^application\/javascript\b/);
    expect(asset.headers['strict-transport-security']).toBe(SECURITY_HEADERS['strict-transport-security']);
    expect(asset.headers['x-content-type-options']).toBe('nosniff');
    expect(asset.headers['x-powered-by']).toBeUndefined();
  });
});

describe('API error headers', () => {
  const missingServer = '/api/servers/00000000-0000-4000-8000-000000000000';

  it.each([
    { case: 'servers list without session', method: 'GET', path: '/api/servers', signedIn: false, status: 401, code: 'unauthenticated' },
    { case: 'unknown server', method: 'GET', path: missingServer, signedIn: true, status: 403, code: 'forbidden' },
    { case: 'redeem without session', method: 'POST', path: '/codes/redeem', signedIn: false, status: 401, code: 'unauthenticated' },
    { case: 'redeem without CSRF token', method: 'POST', path: '/codes/redeem', signedIn: true, status: 403, code: 'invalid_csrf_token' },
    { case: 'redeem of a wrong code', method: 'POST', path: '/codes/redeem', signedIn: true, csrf: true, status: 400, code: 'invalid_input' },
    { case: 'unknown server action', method: 'POST', path: '/servers/x/explode', signedIn: true, csrf: true, status: 404, code: 'not_found' },
  ])('sends no-store on $case', async ({ method, path, signedIn, csrf, status, code }) => {
    const client = signedIn ? customer : new PortalClient(portal);
    const reply =
      method === 'GET'
        ? await client.call(path, { headers: { accept: 'application/json' } })
        : await client.post(path, { code: 'WRONG-CODE0-00000-00000', ...(csrf ? { csrf: customerCsrf } : {}) });

    expect(reply.status).toBe(status);
    expect(reply.headers['content-type']).toMatch(/^application\/json\b/);
    expect(reply.headers['cache-control']).toBe('no-store');
    expect(reply.headers['x-content-type-options']).toBe('nosniff');
    expect(reply.headers['x-powered-by']).toBeUndefined();
    expect((JSON.parse(reply.body) as { error: { code: string } }).error.code).toBe(code);
  });
});
