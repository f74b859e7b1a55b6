import { redirect } from 'next/navigation';

/** The portal's root sends everyone to the dashboard, which asks for sign-in when needed. */
export default function Home(): never {
  redirect('/dashboard');
}
