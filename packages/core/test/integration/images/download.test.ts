import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DownloadOptions } from '../../../src/images/images.js';
import { hasCommand, requirement } from '../../support/requirements.js';

const tools = requirement(hasCommand('openssl'), 'openssl is missing (package openssl)');

const PAYLOAD = randomBytes(256 * 1024);

interface Outcome {
  ok: boolean;
  name?: string;
  code?: string;
  message?: string;
}

/**
 * Runs downloadImage in a child process, because Node reads
 * NODE_EXTRA_CA_CERTS (here: the loopback server's certificate) only when a
 * process starts.
 */
const CHILD_SCRIPT = `
const [moduleUrl, url, target, options] = process.argv.slice(2);
const { downloadImage } = await import(moduleUrl);
try {
  await downloadImage(url, target, JSON.parse(options));
  process.stdout.write(JSON.stringify({ ok: true }));
} catch (error) {
  process.stdout.write(JSON.stringify({ ok: false, name: error.name, code: error.code, message: error.message }));
}
`;

describe.runIf(tools)('downloadImage', () => {
  let folder: string;
  let caFile: string;
  let script: string;
  let https: HttpsServer;
  let http: HttpServer;
  let base = '';
  let plainBase = '';
  let plainRequests = 0;
  let count = 0;

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'vome-download-'));
    caFile = join(folder, 'loopback.crt');
    const keyFile = join(folder, 'loopback.key');
    await execa('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyFile, '-out', caFile]);
    script = join(folder, 'download-child.mts');
    await writeFile(script, CHILD_SCRIPT);

    http = createHttpServer((_request, response) => {
      plainRequests += 1;
      response.writeHead(200).end(PAYLOAD);
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    plainBase = `http://127.0.0.1:${(http.address() as { port: number }).port}`;

    https = createHttpsServer({ key: await readFile(keyFile), cert: await readFile(caFile) }, (request, response) => {
      const url = request.url ?? '';
      const redirect = /^\/redirect\/(\d+)$/.exec(url);
      if (url === '/image') {
        response.writeHead(200, { 'content-type': 'application/octet-stream' }).end(PAYLOAD);
      } else if (redirect) {
        const left = Number(redirect[1]);
        response.writeHead(302, { location: left > 1 ? `/redirect/${left - 1}` : '/image' }).end();
      } else if (url === '/to-http') {
        response.writeHead(302, { location: `${plainBase}/image` }).end();
      } else if (url === '/stall-headers') {
        // Never answers.
      } else if (url === '/stall-body') {
        response.writeHead(200, { 'content-length': String(PAYLOAD.length) });
        response.write(PAYLOAD.subarray(0, 1000));
      } else if (url === '/large-declared') {
        response.writeHead(200, { 'content-length': String(2 * PAYLOAD.length) }).end(Buffer.concat([PAYLOAD, PAYLOAD]));
      } else if (url === '/large-chunked') {
        // No content-length: the body is sent in chunks.
        response.writeHead(200);
        response.write(PAYLOAD);
        response.end(PAYLOAD);
      } else {
        response.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => https.listen(0, '127.0.0.1', resolve));
    base = `https://127.0.0.1:${(https.address() as { port: number }).port}`;
  });

  afterAll(async () => {
    https?.closeAllConnections();
    https?.close();
    http?.close();
    await rm(folder, { recursive: true, force: true });
  });

  /** Downloads `path` from the loopback server into a new folder, and returns the outcome and the folder's files. */
  async function download(path: string, options: DownloadOptions = {}): Promise<{ outcome: Outcome; target: string; files: string[] }> {
    count += 1;
    const targetFolder = join(folder, `target-${count}`);
    await mkdir(targetFolder);
    const target = join(targetFolder, 'download');
    const child = await execa('node', ['--import', 'tsx', script, new URL('../../../src/images/images.ts', import.meta.url).href, `${base}${path}`, target, JSON.stringify(options)], {
      cwd: new URL('../../../../../', import.meta.url),
      env: { NODE_EXTRA_CA_CERTS: caFile },
      timeout: 30_000,
    });
    return { outcome: JSON.parse(child.stdout) as Outcome, target, files: await readdir(targetFolder) };
  }

  it('downloads with the CA from NODE_EXTRA_CA_CERTS', async () => {
    const { outcome, target } = await download('/image');
    expect(outcome).toEqual({ ok: true });
    expect((await readFile(target)).equals(PAYLOAD)).toBe(true);
  });

  it('follows 5 redirects', async () => {
    const { outcome, target } = await download('/redirect/5');
    expect(outcome).toEqual({ ok: true });
    expect((await readFile(target)).equals(PAYLOAD)).toBe(true);
  });

  it('rejects a sixth redirect', async () => {
    const { outcome, files } = await download('/redirect/6');
    expect(outcome).toEqual({ ok: false, name: 'VomeError', code: 'image_download_failed', message: `download of ${base}/redirect/6 failed: more than 5 redirects` });
    expect(files).toEqual([]);
  });

  it('rejects a redirect to http', async () => {
    const before = plainRequests;
    const { outcome, files } = await download('/to-http');
    expect(outcome).toEqual({
      ok: false,
      name: 'VomeError',
      code: 'image_download_failed',
      message: `download of ${base}/to-http failed: it redirects to ${plainBase}/image, which is not an https:// URL`,
    });
    expect(plainRequests).toBe(before);
    expect(files).toEqual([]);
  });

  it('reports an HTTP error status', async () => {
    const { outcome, files } = await download('/missing');
    expect(outcome).toEqual({ ok: false, name: 'VomeError', code: 'image_download_failed', message: `download of ${base}/missing failed with HTTP 404` });
    expect(files).toEqual([]);
  });

  it.each(['/stall-headers', '/stall-body'])('times out on %s', async (path) => {
    const { outcome, files } = await download(path, { stallTimeoutMs: 500 });
    expect(outcome).toEqual({ ok: false, name: 'VomeError', code: 'image_download_failed', message: `download of ${base}${path} timed out: no data arrived for 0.5 s` });
    expect(files).toEqual([]);
  });

  it.each(['/large-declared', '/large-chunked'])('rejects %s above the maximum size', async (path) => {
    const { outcome, files } = await download(path, { maxBytes: PAYLOAD.length });
    expect(outcome).toEqual({
      ok: false,
      name: 'VomeError',
      code: 'image_download_failed',
      message: `download of ${base}${path} failed: the image is larger than the maximum image size of ${PAYLOAD.length} bytes`,
    });
    expect(files).toEqual([]);
  });

  it('accepts a body of exactly the maximum size', async () => {
    const { outcome } = await download('/image', { maxBytes: PAYLOAD.length });
    expect(outcome).toEqual({ ok: true });
  });
});
