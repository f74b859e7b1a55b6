// Starts the portal: Next.js behind a plain Node HTTP server, so that each
// request carries the address of its TCP peer. Route handlers cannot read
// the socket, so the peer goes into the `x-vome-peer-address` header,
// overwriting any value a client sent. The portal then believes
// X-Forwarded-For only when that peer is a trusted proxy.
import { createServer } from 'node:http';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig, loadPortalConfig } from '@vome/core';
import next from 'next';

const port = Number(process.env.PORT ?? 3000);
const hostname = process.env.HOST ?? '127.0.0.1';

// Settings are checked before anything starts, so a wrong one stops the
// portal with the variable's name and rule rather than failing requests later.
// Exit code 7 is the CLI's code for invalid settings.
let portalConfig;
try {
  loadConfig();
  portalConfig = loadPortalConfig();
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(`vome portal: ${error.message}`);
    for (const hint of error.hints) {
      console.error(`  hint: ${hint}`);
    }
    process.exit(7);
  }
  throw error;
}
// next-auth builds its callback URL from NEXTAUTH_URL; it follows the portal's.
process.env.NEXTAUTH_URL = `${portalConfig.portalUrl}/api/auth`;

const app = next({ dev: false, dir: dirname(fileURLToPath(import.meta.url)), hostname, port });
const handle = app.getRequestHandler();
await app.prepare();

const server = createServer((request, response) => {
  request.headers['x-vome-peer-address'] = request.socket.remoteAddress ?? '';
  handle(request, response);
});
server.listen(port, hostname, () => {
  console.log(JSON.stringify({ level: 'info', msg: 'portal listening', address: `http://${hostname}:${port}` }));
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 5000).unref();
  });
}
