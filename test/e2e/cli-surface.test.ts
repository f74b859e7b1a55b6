import { createServer, type Server } from 'node:https';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appliancePath, e2eAvailable, type E2eSetup, setUpVome } from '../support/e2e-fixture.js';
import { VomeCli } from '../support/vome-cli.js';

const manifest = JSON.parse(await readFile(new URL('../../packages/cli/oclif.manifest.json', import.meta.url), 'utf8')) as {
  commands: Record<string, { examples?: string[]; flags: Record<string, unknown> }>;
};
const commandIds = Object.keys(manifest.commands).sort();

describe('every command', () => {
  let cli: VomeCli;

  beforeAll(async () => {
    cli = await VomeCli.create();
  });

  afterAll(async () => {
    await cli.dispose();
  });

  it('covers every topic', () => {
    expect(commandIds).toHaveLength(38);
  });

  it.each(commandIds)('%s has --help with examples and --json', async (id) => {
    expect(manifest.commands[id]?.examples?.length ?? 0).toBeGreaterThanOrEqual(2);
    expect(Object.keys(manifest.commands[id]?.flags ?? {})).toContain('json');

    const result = await cli.run([...id.split(':'), '--help']);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain('EXAMPLES');
    expect(result.stdout).toContain('--json');
  });
});

const host = await e2eAvailable();

describe.skipIf(!host)('image add from https and host check', () => {
  let setup: E2eSetup;
  let server: Server;
  let port = 0;
  let caFile = '';

  beforeAll(async () => {
    setup = await setUpVome(host!, 'surface-host', { start: '10.232.0.90', end: '10.232.0.99' });
    const folder = setup.cli.home;
    caFile = `${folder}/loopback.crt`;
    await execa('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', `${folder}/loopback.key`, '-out', caFile]);
    const [key, cert] = await Promise.all([readFile(`${folder}/loopback.key`), readFile(caFile)]);
    server = createServer({ key, cert }, (request, response) => {
      if (request.url === '/appliance.qcow2') {
        response.writeHead(200, { 'content-type': 'application/octet-stream' });
        createReadStream(appliancePath()).pipe(response);
      } else {
        response.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });

  afterAll(async () => {
    server?.close();
    await setup?.cli.dispose();
  });

  it('downloads, checks and registers an image from an https URL', async () => {
    const expected = (await execa('sha256sum', [appliancePath()])).stdout.split(' ')[0];
    const image = await setup.cli.json<{ name: string; format: string; sha256: string; source: string }>(
      ['image', 'add', `https://127.0.0.1:${port}/appliance.qcow2`, '--name', 'downloaded', '--sha256', expected ?? ''],
      { NODE_EXTRA_CA_CERTS: caFile },
    );
    expect(image).toMatchObject({ name: 'downloaded', format: 'qcow2', sha256: expected, source: `https://127.0.0.1:${port}/appliance.qcow2` });
  });

  it('reports an HTTP error from the download', async () => {
    const result = await setup.cli.run(['image', 'add', `https://127.0.0.1:${port}/missing.qcow2`, '--name', 'missing', '--json'], { NODE_EXTRA_CA_CERTS: caFile });
    expect(result.exitCode).toBe(3);
    const error = (JSON.parse(result.stderr) as { error: { code: string; message: string } }).error;
    expect(error).toMatchObject({ code: 'image_download_failed', message: `download of https://127.0.0.1:${port}/missing.qcow2 failed with HTTP 404` });
  });

  it('refuses a plain http URL', async () => {
    const result = await setup.cli.run(['image', 'add', `http://127.0.0.1:${port}/appliance.qcow2`, '--name', 'plain', '--json']);
    expect(result.exitCode).toBe(3);
    expect(result.stderr).toContain('give a local path or an https:// URL');
  });

  it('host check reports a ready host', async () => {
    // Other test files applied the shared test host from their own databases.
    await setup.cli.json(['host', 'apply', 'surface-host']);
    const checked = await setup.cli.json<{ problems: string[]; libvirtVersion: string; drift: unknown[]; roundTrips: number }>(['host', 'check', 'surface-host']);
    expect(checked.problems).toEqual([]);
    expect(checked.drift).toEqual([]);
    expect(checked.libvirtVersion).toMatch(/^\d+\.\d+\.\d+$/);
    // The probe, then the firewall, nginx and WireGuard reads of the drift check.
    expect(checked.roundTrips).toBe(4);
  });
});
