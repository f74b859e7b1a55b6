import type { AuthOptions } from 'next-auth';
import NextAuth from 'next-auth';

/** One request to next-auth, spelled out instead of read from Next.js's request. */
export interface NextAuthCall {
  /** next-auth's action and provider, e.g. ['signin', 'github'] or ['callback', 'github']. */
  path: string[];
  method: 'GET' | 'POST';
  query?: Record<string, string>;
  cookies?: Record<string, string>;
  headers?: Record<string, string>;
  body?: Record<string, string>;
}

export interface NextAuthReply {
  status: number;
  location: string | undefined;
  setCookies: string[];
  body: unknown;
}

/**
 * Calls next-auth's request handler with explicit cookies, query and body,
 * through its documented API-route form `NextAuth(req, res, options)`. The
 * portal's own route handlers use it so that they can chain two next-auth
 * steps in one request and add their own checks around them.
 */
export async function callNextAuth(options: AuthOptions, call: NextAuthCall): Promise<NextAuthReply> {
  const headers = new Map<string, string | string[]>();
  const reply: NextAuthReply = { status: 200, location: undefined, setCookies: [], body: undefined };
  const response = {
    status(code: number) {
      reply.status = code;
      return response;
    },
    setHeader(name: string, value: string | string[]) {
      headers.set(name.toLowerCase(), value);
      return response;
    },
    getHeader(name: string) {
      return headers.get(name.toLowerCase());
    },
    send(body: unknown) {
      reply.body = body;
      return response;
    },
    json(body: unknown) {
      reply.body = body;
      return response;
    },
    end() {
      return response;
    },
  };
  const request = {
    method: call.method,
    query: { ...call.query, nextauth: call.path },
    cookies: call.cookies ?? {},
    headers: call.headers ?? {},
    body: call.body ?? {},
  };
  await (NextAuth as unknown as (req: unknown, res: unknown, options: AuthOptions) => Promise<unknown>)(request, response, options);
  const location = headers.get('location');
  reply.location = typeof location === 'string' ? location : undefined;
  const cookies = headers.get('set-cookie');
  reply.setCookies = cookies === undefined ? [] : Array.isArray(cookies) ? cookies : [cookies];
  return reply;
}

/** Parses a Cookie header into name → value. */
export function parseCookieHeader(header: string | null): Record<string, string> {
  const cookies: Record<string, string> = {};
  for (const part of (header ?? '').split(';')) {
    const separator = part.indexOf('=');
    if (separator > 0) {
      const raw = part.slice(separator + 1).trim();
      try {
        cookies[part.slice(0, separator).trim()] = decodeURIComponent(raw);
      } catch {
        // Another site's cookie on a parent domain may hold a bare "%"; it is not ours, so it stays as sent.
        cookies[part.slice(0, separator).trim()] = raw;
      }
    }
  }
  return cookies;
}

/** Copies next-auth's reply into a Response; a redirect becomes a 302 with its cookies. */
export function toResponse(reply: NextAuthReply): Response {
  const headers = new Headers({ 'cache-control': 'no-store' });
  for (const cookie of reply.setCookies) {
    headers.append('set-cookie', cookie);
  }
  if (reply.location) {
    headers.set('location', reply.location);
    return new Response(null, { status: 302, headers });
  }
  return new Response(typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body ?? {}), { status: reply.status, headers });
}
