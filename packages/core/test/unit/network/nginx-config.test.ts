import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../../src/errors/index.js';
import { hostMapEntries, renderNginxSite } from '../../../src/network/nginx-config.js';
import { diffNginx } from '../../../src/network/nginx-host.js';
import type { NetworkHost, NetworkModel, NetworkServer } from '../../../src/network/network-model.js';

const HOST: NetworkHost = {
  name: 'ha-1',
  bridge: 'br-haos',
  bridgeAddress: '10.232.0.1',
  bridgeNetwork: '10.232.0.0/24',
  uplink: 'eth0',
  blockedNetworks: [],
  haDomain: 'ha.example.test',
  tlsCertificatePath: '/etc/vome/tls/fullchain.pem',
  tlsKeyPath: '/etc/vome/tls/privkey.pem',
  nginxSitePath: '/etc/nginx/conf.d/vome.conf',
  nginxMainConfigPath: '/etc/nginx/nginx.conf',
  networkDir: '/var/lib/vome/network',
};

function server(subdomain: string, ipv4: string, haPort: number): NetworkServer {
  return { id: `id-${subdomain}`, name: subdomain, subdomain, ipv4, mac: '52:54:00:00:00:01', haPort, tap: 'vm0ae8000c', tunnel: null };
}

const KITCHEN = server('kitchen', '10.232.0.12', 8123);
const ATTIC = server('attic', '10.232.0.13', 80);
const MODEL: NetworkModel = { host: HOST, servers: [KITCHEN, ATTIC] };

const EXPECTED_SITE = `# vome's nginx site for host "ha-1", rendered from vome's database.
# vome rewrites this file on every network apply: change servers with vome, not here.

# The bounds let nginx build a hash for every map key; the bucket fits the
# longest possible key (a 63-character label plus the domain) several times.
map_hash_max_size 65536;
map_hash_bucket_size 512;

# Exact names only: nginx lower-cases $host and removes the port and one
# trailing dot, so "A.ha.example.test." matches a.ha.example.test but x.a.ha.example.test matches nothing.
map $host $vome_upstream {
    default "";
    attic.ha.example.test 10.232.0.13:80;
    kitchen.ha.example.test 10.232.0.12:8123;
}

map $http_upgrade $vome_connection {
    default upgrade;
    "" close;
}

server {
    listen 80 default_server;
    server_name _;

    if ($vome_upstream = "") {
        return 404;
    }
    return 301 https://$host$request_uri;
}

server {
    listen 443 ssl default_server;
    server_name _;

    ssl_certificate /etc/vome/tls/fullchain.pem;
    ssl_certificate_key /etc/vome/tls/privkey.pem;
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
    if ($vome_upstream = "") {
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
        proxy_pass http://$vome_upstream;
    }

    location = /api/websocket {
        proxy_pass http://$vome_upstream;
        proxy_buffering off;
        proxy_read_timeout 24h;
        proxy_send_timeout 24h;
    }
}
`;

/** Returns the error that `action` throws, or fails the test when it throws nothing. */
function thrownBy(action: () => unknown): Error {
  try {
    action();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected an error, but none was thrown');
}

describe('renderNginxSite', () => {
  it('renders the whole site file', () => {
    expect(renderNginxSite(MODEL)).toBe(EXPECTED_SITE);
  });

  it('does not depend on the order of the servers', () => {
    expect(renderNginxSite({ host: HOST, servers: [ATTIC, KITCHEN] })).toBe(EXPECTED_SITE);
  });

  it('renders an empty map when there are no servers', () => {
    expect(renderNginxSite({ host: HOST, servers: [] })).toContain('map $host $vome_upstream {\n    default "";\n}\n');
  });

  it('lower-cases the domain and subdomains in map keys', () => {
    const site = renderNginxSite({ host: { ...HOST, haDomain: 'HA.Example.TEST' }, servers: [server('Kitchen', '10.232.0.12', 8123)] });
    expect(site).toContain('\n    kitchen.ha.example.test 10.232.0.12:8123;\n');
  });

  it.each([
    ['a 14-character domain', 'ha.example.test', 512],
    ['a 182-character domain', `${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}`, 2048],
  ])('sizes the hash buckets for %s', (_case, haDomain, bucketSize) => {
    expect(renderNginxSite({ host: { ...HOST, haDomain }, servers: [] })).toContain(`\nmap_hash_bucket_size ${bucketSize};\n`);
  });

  it.each([
    ['a semicolon', 'a;b'],
    ['a space', 'a b'],
    ['an opening brace', 'a{'],
    ['a closing brace', 'a}'],
    ['a double quote', 'a"b'],
    ['a single quote', "a'b"],
    ['a dollar sign', 'a$host'],
    ['a newline', 'a\nb'],
    ['a dot', 'a.b'],
    ['a leading hyphen', '-a'],
    ['an empty label', ''],
    ['a 64-character label', 'a'.repeat(64)],
  ])('rejects a subdomain with %s', (_case, subdomain) => {
    const error = thrownBy(() => renderNginxSite({ host: HOST, servers: [server(subdomain, '10.232.0.12', 8123)] }));
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toContain('invalid subdomain');
  });

  it('rejects a subdomain used by two servers', () => {
    const error = thrownBy(() => renderNginxSite({ host: HOST, servers: [KITCHEN, { ...ATTIC, name: 'other', subdomain: 'Kitchen' }] }));
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toBe('subdomain "kitchen" is used by servers "kitchen" and "other": each name must lead to one server');
  });

  it.each([
    ['a single label', 'localhost'],
    ['a semicolon', 'ha.example.test;'],
    ['a space', 'ha example.test'],
    ['a brace', 'ha.example.test{'],
    ['a trailing dot', 'ha.example.test.'],
    ['a wildcard', '*.example.test'],
    ['190 characters', `${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(7)}`],
  ])('rejects a domain with %s', (_case, haDomain) => {
    const error = thrownBy(() => renderNginxSite({ host: { ...HOST, haDomain }, servers: [] }));
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toContain(`invalid Home Assistant domain "${haDomain}"`);
  });

  it.each([
    ['an address with a port', { ipv4: '10.232.0.12:80' }, 'invalid address "10.232.0.12:80" of server "kitchen"'],
    ['an address with a semicolon', { ipv4: '10.232.0.12;' }, 'invalid address "10.232.0.12;" of server "kitchen"'],
    ['port 0', { haPort: 0 }, 'invalid Home Assistant port 0 of server "kitchen"'],
    ['port 65536', { haPort: 65_536 }, 'invalid Home Assistant port 65536 of server "kitchen"'],
    ['a fractional port', { haPort: 80.5 }, 'invalid Home Assistant port 80.5 of server "kitchen"'],
  ])('rejects %s', (_case, change, message) => {
    const error = thrownBy(() => renderNginxSite({ host: HOST, servers: [{ ...KITCHEN, ...change }] }));
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toContain(message);
  });

  it.each([
    ['a relative certificate path', { tlsCertificatePath: 'tls/cert.pem' }, 'invalid TLS certificate path "tls/cert.pem"'],
    ['a certificate path with a space', { tlsCertificatePath: '/etc/my cert.pem' }, 'invalid TLS certificate path "/etc/my cert.pem"'],
    ['a certificate path with a semicolon', { tlsCertificatePath: '/etc/cert.pem;' }, 'invalid TLS certificate path "/etc/cert.pem;"'],
    ['a key path with a variable', { tlsKeyPath: '/etc/$host.pem' }, 'invalid TLS key path "/etc/$host.pem"'],
    ['a key path with a brace', { tlsKeyPath: '/etc/key}.pem' }, 'invalid TLS key path "/etc/key}.pem"'],
  ])('rejects %s', (_case, change, message) => {
    const error = thrownBy(() => renderNginxSite({ host: { ...HOST, ...change }, servers: [] }));
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toContain(message);
  });
});

describe('hostMapEntries', () => {
  it('maps each name to its address and port, sorted by name', () => {
    expect(hostMapEntries([KITCHEN, ATTIC], 'ha.example.test')).toEqual([
      { name: 'attic.ha.example.test', upstream: '10.232.0.13:80' },
      { name: 'kitchen.ha.example.test', upstream: '10.232.0.12:8123' },
    ]);
  });
});

describe('diffNginx', () => {
  const site = renderNginxSite(MODEL);

  it('finds nothing when the files are equal', () => {
    expect(diffNginx(site, site)).toEqual([]);
  });

  it('adds every entry and the settings when the host has no file', () => {
    expect(diffNginx(site, null)).toEqual([
      { part: 'nginx', action: 'add', item: 'attic.ha.example.test → 10.232.0.13:80' },
      { part: 'nginx', action: 'add', item: 'kitchen.ha.example.test → 10.232.0.12:8123' },
      { part: 'nginx', action: 'add', item: 'settings outside the server map (the site file is missing)' },
    ]);
  });

  it('adds a new server as one entry', () => {
    const actual = renderNginxSite({ host: HOST, servers: [KITCHEN] });
    expect(diffNginx(site, actual)).toEqual([{ part: 'nginx', action: 'add', item: 'attic.ha.example.test → 10.232.0.13:80' }]);
  });

  it('removes a destroyed server as one entry', () => {
    const desired = renderNginxSite({ host: HOST, servers: [ATTIC] });
    expect(diffNginx(desired, site)).toEqual([{ part: 'nginx', action: 'remove', item: 'kitchen.ha.example.test → 10.232.0.12:8123' }]);
  });

  it('replaces an entry whose port changed', () => {
    const desired = renderNginxSite({ host: HOST, servers: [KITCHEN, { ...ATTIC, haPort: 8123 }] });
    expect(diffNginx(desired, site)).toEqual([
      { part: 'nginx', action: 'add', item: 'attic.ha.example.test → 10.232.0.13:8123' },
      { part: 'nginx', action: 'remove', item: 'attic.ha.example.test → 10.232.0.13:80' },
    ]);
  });

  it('reports one item for a changed setting outside the map', () => {
    const desired = renderNginxSite({ host: { ...HOST, tlsCertificatePath: '/etc/vome/tls/new.pem' }, servers: [KITCHEN, ATTIC] });
    expect(diffNginx(desired, site)).toEqual([
      { part: 'nginx', action: 'add', item: 'settings outside the server map, first difference: "ssl_certificate /etc/vome/tls/new.pem;"' },
    ]);
  });

  it('reports a line added on the host outside the map', () => {
    expect(diffNginx(site, `${site}# added by hand\n`)).toEqual([
      { part: 'nginx', action: 'add', item: 'settings outside the server map, first difference: host line "# added by hand" is not rendered' },
    ]);
  });

  it('treats a file without the map as having no entries', () => {
    expect(diffNginx(site, 'server { listen 80; }\n')).toEqual([
      { part: 'nginx', action: 'add', item: 'attic.ha.example.test → 10.232.0.13:80' },
      { part: 'nginx', action: 'add', item: 'kitchen.ha.example.test → 10.232.0.12:8123' },
      { part: 'nginx', action: 'add', item: 'settings outside the server map, first difference: "# vome\'s nginx site for host "ha-1", rendered from vome\'s database."' },
    ]);
  });
});
