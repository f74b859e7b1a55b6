import { NextResponse, type NextRequest } from 'next/server';

/**
 * Gives every page a fresh nonce and a Content-Security-Policy that allows
 * only scripts carrying it (Next.js reads the nonce from the request's
 * policy and adds it to its own script tags). No inline script without
 * the nonce runs, and no page can be framed.
 */
const githubOrigin = new URL(process.env.VOME_GITHUB_URL ?? 'https://github.com').origin;

export function proxy(request: NextRequest): NextResponse {
  const nonce = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('base64');
  const policy = [
    "default-src 'self'",
    `script-src 'self' 'nonce-${nonce}' 'strict-dynamic'`,
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    // The sign-in form's response redirects to GitHub's authorize page, and
    // browsers check form-action on that redirect too.
    `form-action 'self' ${githubOrigin}`,
    "frame-ancestors 'none'",
  ].join('; ');
  const headers = new Headers(request.headers);
  headers.set('x-nonce', nonce);
  headers.set('content-security-policy', policy);
  const response = NextResponse.next({ request: { headers } });
  response.headers.set('content-security-policy', policy);
  return response;
}

export const config = {
  matcher: [{ source: '/((?!_next/static|_next/image|favicon.ico).*)' }],
};
