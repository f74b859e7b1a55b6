import type { Metadata } from 'next';
import type { ReactNode } from 'react';
import { readFlash } from '../lib/flash';
import { currentUser } from '../lib/session';
import './portal.css';

// Every page is rendered per request: the nonce in the Content-Security-Policy
// differs each time, and Next.js adds it only to pages it renders then.
export const dynamic = 'force-dynamic';

export const metadata: Metadata = { title: 'vome', description: 'Your Home Assistant, hosted' };

/** Wraps every page in a header with navigation when signed in, and shows the flash message of the last form. */
export default async function RootLayout({ children }: { children: ReactNode }) {
  const user = await currentUser();
  const flash = await readFlash();
  return (
    <html lang="en">
      <body>
        <header>
          <strong>vome</strong>
          {user ? (
            <nav aria-label="Main">
              <a href="/dashboard">Dashboard</a>
              <a href="/redeem">Redeem a code</a>
              <a href="/account">Account</a>
            </nav>
          ) : null}
        </header>
        <main>
          {flash ? (
            <p className={flash.kind} role={flash.kind === 'error' ? 'alert' : 'status'}>
              {flash.message}
            </p>
          ) : null}
          {children}
        </main>
      </body>
    </html>
  );
}
