import { redirect } from 'next/navigation';

/** Redirects the portal's root to the dashboard, which requires sign-in. */
export default function Home(): never {
  redirect('/dashboard');
}
