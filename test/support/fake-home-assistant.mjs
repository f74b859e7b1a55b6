#!/usr/bin/env node
// A stand-in for Home Assistant's HTTP server, for tests of what sits in front
// of it (nginx, firewall, tunnels). Plain Node, no dependencies, so it runs
// with `node` inside a network namespace.
//
//   node fake-home-assistant.mjs --port 8123 --name a [--listen 0.0.0.0] [--trusted-proxy 10.232.0.1/32 …]
//
// It copies these behaviours of Home Assistant core (homeassistant/components/http):
// - forwarded.py: a request with X-Forwarded-For gets 400 unless the peer is a
//   trusted proxy (none by default, as with use_x_forwarded_for off). From a
//   trusted proxy: every X-Forwarded-For entry must be an IP address, the
//   X-Forwarded-Proto items must be non-empty and number 1 or as many as the
//   X-Forwarded-For items, and the last X-Forwarded-Host must not be empty.
//   Repeated headers are joined, as current Home Assistant does.
// - aiohttp: a duplicate or empty Host header gets 400.
// - headers.py: every response carries Referrer-Policy no-referrer,
//   X-Content-Type-Options nosniff and X-Frame-Options SAMEORIGIN.
// - websocket_api: GET /api/websocket with a valid upgrade gets 101 and the
//   text message {"type":"auth_required","ha_version":…}. Unlike Home
//   Assistant, the fake then closes the connection instead of waiting for auth.
// Any other GET or HEAD returns 200 "home-assistant <name>"; other methods 405.
//
// It prints "listening" on stdout once it accepts connections, and one JSON
// line per request on stderr: method, path, every Host header received, the
// forwarding headers received, the peer address and the status.

import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { BlockList, isIP } from 'node:net';
import { parseArgs } from 'node:util';

const HA_VERSION = '2026.8.0';
const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const FORWARDING_HEADERS = ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-real-ip', 'forwarded'];
const HA_HEADERS = {
  'Referrer-Policy': 'no-referrer',
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'SAMEORIGIN',
};

const { values: options } = parseArgs({
  options: {
    port: { type: 'string' },
    name: { type: 'string' },
    listen: { type: 'string', default: '0.0.0.0' },
    'trusted-proxy': { type: 'string', multiple: true, default: [] },
  },
});

if (options.port === undefined || options.name === undefined || !/^\d{1,5}$/.test(options.port)) {
  process.stderr.write('usage: fake-home-assistant.mjs --port PORT --name NAME [--listen ADDRESS] [--trusted-proxy CIDR …]\n');
  process.exit(2);
}

const trustedProxies = new BlockList();
for (const cidr of options['trusted-proxy']) {
  const [address = '', prefix] = cidr.split('/');
  const family = isIP(address);
  if (family === 0) {
    process.stderr.write(`invalid --trusted-proxy "${cidr}": expected an IP address with an optional /prefix\n`);
    process.exit(2);
  }
  const type = family === 4 ? 'ipv4' : 'ipv6';
  const hostPrefix = family === 4 ? 32 : 128;
  trustedProxies.addSubnet(address, prefix === undefined ? hostPrefix : Number(prefix), type);
}
const useForwardedFor = options['trusted-proxy'].length > 0;

/** Collects every value of a header, in order, from Node's raw header list. */
function headerValues(request, name) {
  const found = [];
  for (let index = 0; index < request.rawHeaders.length; index += 2) {
    if (request.rawHeaders[index].toLowerCase() === name) {
      found.push(request.rawHeaders[index + 1]);
    }
  }
  return found;
}

function isTrusted(address) {
  const plain = address.startsWith('::ffff:') ? address.slice('::ffff:'.length) : address;
  const family = isIP(plain);
  return family !== 0 && trustedProxies.check(plain, family === 4 ? 'ipv4' : 'ipv6');
}

/** Returns the reason for a 400 under Home Assistant's forwarded middleware, or null. */
function forwardedRejection(request) {
  const forwardedFor = headerValues(request, 'x-forwarded-for');
  if (forwardedFor.length === 0) {
    return null;
  }
  const peer = request.socket.remoteAddress ?? '';
  if (!useForwardedFor) {
    return `request from a reverse proxy received from ${peer}, but the HTTP integration is not set up for reverse proxies`;
  }
  if (!isTrusted(peer)) {
    return `X-Forwarded-For received from an untrusted proxy ${peer}`;
  }

  const forwardedForItems = forwardedFor.flatMap((value) => value.split(',')).map((item) => item.trim());
  if (forwardedForItems.some((item) => isIP(item) === 0)) {
    return `invalid IP address in X-Forwarded-For: ${forwardedFor[0]}`;
  }
  const proto = headerValues(request, 'x-forwarded-proto');
  if (proto.length > 0) {
    const protoItems = proto.flatMap((value) => value.split(',')).map((item) => item.trim());
    if (protoItems.includes('')) {
      return `empty item in X-Forwarded-Proto: ${proto[0]}`;
    }
    if (protoItems.length !== 1 && protoItems.length !== forwardedForItems.length) {
      return `incorrect number of elements in X-Forwarded-Proto: expected 1 or ${forwardedForItems.length}, got ${protoItems.length}`;
    }
  }
  const forwardedHost = headerValues(request, 'x-forwarded-host');
  if (forwardedHost.length > 0) {
    const last = forwardedHost.flatMap((value) => value.split(',')).map((item) => item.trim()).at(-1);
    if (last === '') {
      return 'empty value in X-Forwarded-Host';
    }
  }
  return null;
}

function hostRejection(hosts) {
  if (hosts.length > 1) {
    return "duplicate 'Host' header";
  }
  if (hosts.length === 1 && hosts[0].trim() === '') {
    return "empty 'Host' header";
  }
  return null;
}

function logRequest(request, hosts, status) {
  const forwarded = {};
  for (const name of FORWARDING_HEADERS) {
    const found = headerValues(request, name);
    if (found.length > 0) {
      forwarded[name] = found;
    }
  }
  const path = (request.url ?? '').split('?')[0];
  process.stderr.write(
    `${JSON.stringify({ name: options.name, method: request.method, path, hosts, forwarded, peer: request.socket.remoteAddress, status })}\n`,
  );
}

function respond(request, response, hosts, status, body) {
  logRequest(request, hosts, status);
  response.writeHead(status, { ...HA_HEADERS, 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  response.end(request.method === 'HEAD' ? undefined : body);
}

/** Encodes one unmasked server frame with a payload shorter than 126 bytes. */
function websocketFrame(opcode, payload) {
  return Buffer.concat([Buffer.from([0x80 | opcode, payload.length]), payload]);
}

/** Returns the Sec-WebSocket-Accept value, or null when the upgrade request is invalid. */
function websocketAccept(request) {
  const key = headerValues(request, 'sec-websocket-key');
  const version = headerValues(request, 'sec-websocket-version');
  const upgrade = (request.headers.upgrade ?? '').toLowerCase();
  if (request.method !== 'GET' || upgrade !== 'websocket' || key.length !== 1 || version[0] !== '13') {
    return null;
  }
  if (Buffer.from(key[0], 'base64').length !== 16) {
    return null;
  }
  return createHash('sha1').update(key[0] + WEBSOCKET_GUID).digest('base64');
}

const server = createServer((request, response) => {
  const hosts = headerValues(request, 'host');
  const rejection = hostRejection(hosts) ?? forwardedRejection(request);
  if (rejection !== null) {
    respond(request, response, hosts, 400, `400: Bad Request\n${rejection}\n`);
    return;
  }
  const path = (request.url ?? '').split('?')[0];
  if (path === '/api/websocket') {
    // A request without Upgrade reaches here, and aiohttp rejects it as a websocket handshake.
    respond(request, response, hosts, 400, '400: Bad Request\nNo WebSocket UPGRADE hdr\n');
    return;
  }
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    respond(request, response, hosts, 405, '405: Method Not Allowed\n');
    return;
  }
  respond(request, response, hosts, 200, `home-assistant ${options.name}`);
});

server.on('upgrade', (request, socket) => {
  const hosts = headerValues(request, 'host');
  const path = (request.url ?? '').split('?')[0];
  const rejection = hostRejection(hosts) ?? forwardedRejection(request);
  const accept = rejection === null && path === '/api/websocket' ? websocketAccept(request) : null;
  if (accept === null) {
    logRequest(request, hosts, 400);
    socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    return;
  }
  logRequest(request, hosts, 101);
  const message = Buffer.from(JSON.stringify({ type: 'auth_required', ha_version: HA_VERSION }));
  const closeCode = Buffer.from([0x03, 0xe8]);
  socket.write(
    `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n` +
      Object.entries(HA_HEADERS)
        .map(([name, value]) => `${name}: ${value}\r\n`)
        .join('') +
      '\r\n',
  );
  socket.write(websocketFrame(0x1, message));
  socket.end(websocketFrame(0x8, closeCode));
});

server.on('clientError', (error, socket) => {
  socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    process.exit(0);
  });
}

server.listen(Number(options.port), options.listen, () => {
  process.stdout.write('listening\n');
});
