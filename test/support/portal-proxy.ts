import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { freePort } from './portal.js';

export interface PortalProxy {
  /** https://<serverName>:<port>, the address browsers use. */
  url: string;
  port: number;
  /** The proxy's self-signed certificate, PEM. */
  certificatePath: string;
  stop(): Promise<void>;
}

/**
 * Starts nginx on 127.0.0.1 as the TLS edge in front of a portal, the way a
 * host's nginx fronts it. TLS ends here and Host is kept. X-Forwarded-For is
 * set to the address nginx saw, replacing a client's own header rather than
 * appending to it. The certificate is self-signed for `serverName`. nginx runs in the foreground as this process's child.
 */
export async function startPortalProxy(serverName: string, portalPort: number, listenPort?: number): Promise<PortalProxy> {
  const dir = await mkdtemp(join(tmpdir(), 'vome-portal-nginx-'));
  const port = listenPort ?? (await freePort());
  const certificatePath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  await execa('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', `/CN=${serverName}`, '-addext', `subjectAltName=DNS:${serverName}`, '-keyout', keyPath, '-out', certificatePath]);
  const config = `
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream portal { server 127.0.0.1:${portalPort}; keepalive 32; }
  server {
    listen 127.0.0.1:${port} ssl;
    server_name ${serverName};
    ssl_certificate ${certificatePath};
    ssl_certificate_key ${keyPath};
    location / {
      proxy_pass http://portal;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto https;
    }
  }
}
`;
  const configPath = join(dir, 'nginx.conf');
  await writeFile(configPath, config);
  const child: ChildProcess = spawn('nginx', ['-c', configPath, '-p', dir, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()));
  const deadline = Date.now() + 10_000;
  for (;;) {
    const probe = await execa('bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${port}`], { reject: false });
    if (probe.exitCode === 0) {
      break;
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`nginx did not start on 127.0.0.1:${port}: ${stderr}`);
    }
    await new Promise((wait) => setTimeout(wait, 100));
  }
  return {
    url: `https://${serverName}:${port}`,
    port,
    certificatePath,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGQUIT');
        await Promise.race([exited, new Promise((wait) => setTimeout(wait, 5000))]);
        if (child.exitCode === null) {
          child.kill('SIGKILL');
        }
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
