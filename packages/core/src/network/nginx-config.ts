import { InvalidInputError } from '../errors/index.js';
import { isDnsLabel } from '../naming/dns-label.js';
import { ipv4ToNumber } from '../naming/ipv4.js';
import type { NetworkHost, NetworkModel, NetworkServer } from './network-model.js';

/** The variable that the host map sets to a server's `<address>:<port>`, or to "" for unknown names. */
export const UPSTREAM_VARIABLE = '$vome_upstream';

/** The first line of the host map block, also used to find the block in a file read from a host. */
export const HOST_MAP_HEADER = `map $host ${UPSTREAM_VARIABLE} {`;

// ngx_hash_init (src/core/ngx_hash.c) tries table sizes up to
// map_hash_max_size. With a bound above 10,000 and more than bound/100 keys
// (655 here), it starts 1,000 below the bound, so a large map gets about
// 64,500 slots of 8 bytes (about 0.5 MB) and a small map a small table. The
// bound is constant so that adding a server changes only map entries, which
// keeps diffNginx's items exact.
// NOTE: tested with 10,000 names. Far larger maps may need a larger bound.
const MAP_HASH_MAX_SIZE = 65_536;

/** Longest DNS label, the subdomain part of a map key. */
const MAX_LABEL_LENGTH = 63;

/**
 * Characters allowed in certificate and key paths. nginx reads `$` as a
 * variable and whitespace, `;`, `{`, `}`, `#` and quotes as syntax, so a path
 * with any of them could change the configuration.
 */
const SAFE_PATH = /^\/[A-Za-z0-9._/+@:,=-]+$/;

/** Map entry of one server: `<subdomain>.<haDomain>` → `<ipv4>:<haPort>`. */
export interface HostMapEntry {
  name: string;
  upstream: string;
}

/**
 * Renders vome's nginx include file for a host: one map from the exact
 * server name to its VM's address and port, an HTTP server that redirects
 * known names to HTTPS, and an HTTPS server that proxies known names to
 * Home Assistant and returns 404 for every other name.
 *
 * The file goes in nginx's `http` block. It is the `default_server` on ports
 * 80 and 443 and sets `map_hash_max_size` and `map_hash_bucket_size`, so the
 * main configuration and other sites must set neither and must not claim
 * those default servers.
 *
 * @throws InvalidInputError when a subdomain or the domain is not made of
 * DNS labels, a subdomain appears twice, an address or port is invalid, or a
 * certificate path contains characters that nginx reads as syntax.
 *
 * @example
 * renderNginxSite(model) // "# vome's nginx site for host \"ha-1\"…\nmap $host $vome_upstream {\n…"
 */
export function renderNginxSite(model: NetworkModel): string {
  const { host } = model;
  const domain = requireDomain(host.haDomain);
  const entries = hostMapEntries(model.servers, domain);
  const certificate = requireConfigPath('TLS certificate path', host.tlsCertificatePath);
  const key = requireConfigPath('TLS key path', host.tlsKeyPath);

  return [
    renderHeader(host),
    renderHostMap(entries, domain),
    renderConnectionMap(),
    renderHttpServer(),
    renderHttpsServer(certificate, key),
  ].join('\n');
}

/**
 * Builds the map entries, sorted by name so that the file does not depend
 * on the order of the servers.
 *
 * @throws InvalidInputError on an invalid subdomain, address or port, or a
 * subdomain used by two servers.
 */
export function hostMapEntries(servers: readonly NetworkServer[], haDomain: string): HostMapEntry[] {
  const domain = requireDomain(haDomain);
  const seen = new Map<string, string>();
  const entries: HostMapEntry[] = [];

  for (const server of servers) {
    const subdomain = server.subdomain.toLowerCase();
    if (!isDnsLabel(subdomain)) {
      throw new InvalidInputError(
        `invalid subdomain "${server.subdomain}" of server "${server.name}": nginx map keys must be DNS labels (a–z, 0–9 and inner hyphens, at most ${MAX_LABEL_LENGTH} characters)`,
        { fields: { server: server.name, subdomain: server.subdomain } },
      );
    }
    const owner = seen.get(subdomain);
    if (owner !== undefined) {
      throw new InvalidInputError(`subdomain "${subdomain}" is used by servers "${owner}" and "${server.name}": each name must lead to one server`, {
        fields: { server: server.name, subdomain },
      });
    }
    seen.set(subdomain, server.name);
    entries.push({ name: `${subdomain}.${domain}`, upstream: `${requireAddress(server)}:${requirePort(server)}` });
  }

  return entries.sort(compareNames);
}

/** Orders entries by name, byte by byte, so that the order does not depend on the locale. */
function compareNames(left: HostMapEntry, right: HostMapEntry): number {
  if (left.name === right.name) {
    return 0;
  }
  return left.name < right.name ? -1 : 1;
}

function renderHeader(host: NetworkHost): string {
  return `# vome's nginx site for host "${host.name.replace(/[^A-Za-z0-9._-]/g, '?')}", rendered from vome's database.
# vome rewrites this file on every network apply: change servers with vome, not here.

# The bounds let nginx build a hash for every map key; the bucket fits the
# longest possible key (a 63-character label plus the domain) several times.
map_hash_max_size ${MAP_HASH_MAX_SIZE};
map_hash_bucket_size ${mapHashBucketSize(host.haDomain)};
`;
}

function renderHostMap(entries: readonly HostMapEntry[], domain: string): string {
  const lines = entries.map((entry) => `    ${entry.name} ${entry.upstream};`);
  // No "hostnames" parameter: its wildcards match at any depth.
  return `# Exact names only: nginx lower-cases $host and removes the port and one
# trailing dot, so "A.${domain}." matches a.${domain} but x.a.${domain} matches nothing.
${HOST_MAP_HEADER}
    default "";
${lines.map((line) => `${line}\n`).join('')}}
`;
}

function renderConnectionMap(): string {
  return `map $http_upgrade $vome_connection {
    default upgrade;
    "" close;
}
`;
}

function renderHttpServer(): string {
  return `server {
    listen 80 default_server;
    server_name _;

    if (${UPSTREAM_VARIABLE} = "") {
        return 404;
    }
    return 301 https://$host$request_uri;
}
`;
}

function renderHttpsServer(certificate: string, key: string): string {
  return `server {
    listen 443 ssl default_server;
    server_name _;

    ssl_certificate ${certificate};
    ssl_certificate_key ${key};
    ssl_protocols TLSv1.2 TLSv1.3;

    # Home Assistant sends Referrer-Policy and X-Content-Type-Options itself;
    # hiding its copies leaves exactly one of each, on 404s too. A location
    # with its own add_header or proxy_hide_header would drop these, so none has one.
    proxy_hide_header Strict-Transport-Security;
    proxy_hide_header X-Content-Type-Options;
    proxy_hide_header Referrer-Policy;
    add_header Strict-Transport-Security "max-age=63072000; includeSubDomains" always;
    add_header X-Content-Type-Options nosniff always;
    add_header Referrer-Policy no-referrer always;

    # Unknown and removed names stop here, before any location, so they are never proxied.
    if (${UPSTREAM_VARIABLE} = "") {
        return 404;
    }

    # Home Assistant rejects large requests itself; backup uploads can be
    # gigabytes, so nginx streams bodies instead of limiting or spooling them.
    client_max_body_size 0;
    proxy_request_buffering off;

    # A location with its own proxy_set_header would drop these, so none has one.
    proxy_http_version 1.1;
    proxy_set_header Host $host;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection $vome_connection;
    # Home Assistant answers 400 to any X-Forwarded-For from a proxy it does
    # not trust, and vome cannot rely on its trusted_proxies setting. An empty
    # value makes nginx send none of these headers, dropping every copy a client sent.
    proxy_set_header X-Forwarded-For "";
    proxy_set_header X-Forwarded-Proto "";
    proxy_set_header X-Forwarded-Host "";
    proxy_set_header X-Real-IP "";
    proxy_set_header Forwarded "";

    location / {
        proxy_pass http://${UPSTREAM_VARIABLE};
    }

    location = /api/websocket {
        proxy_pass http://${UPSTREAM_VARIABLE};
        proxy_buffering off;
        proxy_read_timeout 24h;
        proxy_send_timeout 24h;
    }
}
`;
}

/**
 * Returns a map_hash_bucket_size that fits four of the longest possible keys.
 * ngx_hash_init needs each key's element (a pointer plus the key and 2 bytes,
 * aligned to 8) and one closing pointer to fit a bucket.
 */
function mapHashBucketSize(haDomain: string): number {
  const longestKey = MAX_LABEL_LENGTH + 1 + haDomain.length;
  const element = 8 + Math.ceil((longestKey + 2) / 8) * 8;
  let size = 64;
  while (size < 8 + 4 * element) {
    size *= 2;
  }
  return size;
}

function requireDomain(haDomain: string): string {
  const domain = haDomain.toLowerCase();
  const labels = domain.split('.');
  if (domain.length > 253 - MAX_LABEL_LENGTH - 1 || labels.length < 2 || !labels.every((label) => isDnsLabel(label))) {
    throw new InvalidInputError(
      `invalid Home Assistant domain "${haDomain}": expected two or more DNS labels separated by dots, such as ha.example.com, at most ${253 - MAX_LABEL_LENGTH - 1} characters`,
      { fields: { haDomain } },
    );
  }
  return domain;
}

function requireAddress(server: NetworkServer): string {
  try {
    ipv4ToNumber(server.ipv4);
  } catch (error) {
    throw new InvalidInputError(`invalid address "${server.ipv4}" of server "${server.name}": expected an IPv4 address such as 10.232.0.12`, {
      fields: { server: server.name },
      cause: error,
    });
  }
  return server.ipv4;
}

function requirePort(server: NetworkServer): number {
  if (!Number.isInteger(server.haPort) || server.haPort < 1 || server.haPort > 65_535) {
    throw new InvalidInputError(`invalid Home Assistant port ${server.haPort} of server "${server.name}": expected an integer from 1 to 65535`, {
      fields: { server: server.name },
    });
  }
  return server.haPort;
}

function requireConfigPath(field: string, path: string): string {
  if (!SAFE_PATH.test(path)) {
    throw new InvalidInputError(
      `invalid ${field} "${path}": expected an absolute path of letters, digits and . _ / + @ : , = -, because nginx reads other characters as syntax or variables`,
      { fields: { path } },
    );
  }
  return path;
}
