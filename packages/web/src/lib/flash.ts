import { cookies } from 'next/headers';

/**
 * A one-line message for the next page the browser loads after a form:
 * kept in a short-lived HttpOnly cookie rather than the URL, so that a
 * crafted link cannot put words on a portal page. The __Host- prefix
 * stops a sibling subdomain from setting it.
 */
export const FLASH_COOKIE = '__Host-vome-flash';

export interface Flash {
  kind: 'notice' | 'error';
  message: string;
}

/** Formats the Set-Cookie value of a flash message; it lives 30 seconds. */
export function flashCookie(flash: Flash): string {
  const value = Buffer.from(JSON.stringify(flash)).toString('base64url');
  return `${FLASH_COOKIE}=${value}; Path=/; Max-Age=30; HttpOnly; Secure; SameSite=Lax`;
}

/** Reads the flash message of the page being rendered, if any. */
export async function readFlash(): Promise<Flash | undefined> {
  const value = (await cookies()).get(FLASH_COOKIE)?.value;
  if (!value) {
    return undefined;
  }
  try {
    const parsed = JSON.parse(Buffer.from(value, 'base64url').toString('utf8')) as Partial<Flash>;
    if ((parsed.kind === 'notice' || parsed.kind === 'error') && typeof parsed.message === 'string') {
      return { kind: parsed.kind, message: parsed.message.slice(0, 300) };
    }
  } catch {
    // An unreadable cookie shows nothing.
  }
  return undefined;
}
