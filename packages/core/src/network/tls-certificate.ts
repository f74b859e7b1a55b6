import { X509Certificate, createPublicKey } from 'node:crypto';
import { InvalidInputError } from '../errors/index.js';
import { type CommandRunner, shellQuote as q } from '../runner/command-runner.js';
import type { NetworkHost } from './network-model.js';

const DAY_MS = 86_400_000;

/** Facts about a host's TLS certificate that passed the checks. */
export interface CertificateFacts {
  subject: string;
  issuer: string;
  /** DNS names from the subjectAltName extension, e.g. ["*.ha.example.com"]. */
  dnsNames: string[];
  notBefore: Date;
  notAfter: Date;
  /** Whole days until notAfter, counted from the check. */
  daysLeft: number;
  /** SHA-256 fingerprint in OpenSSL's colon-separated hex. */
  fingerprint256: string;
}

/** Certificate and public key as the host printed them, with their paths on the host. */
export interface CertificateInput {
  /** Certificate file in PEM. A chain is allowed, and its first certificate is the server's. */
  certificatePem: string;
  /** SPKI PEM derived from the private key (`openssl pkey -pubout`). */
  publicKeyPem: string;
  haDomain: string;
  certificatePath: string;
  keyPath: string;
}

/**
 * Checks the host's TLS certificate and key for vome's nginx site in one
 * round trip. The host prints the certificate and the public key derived from
 * the key file, so the private key never leaves the host.
 *
 * @throws InvalidInputError when a file is missing or unreadable, or for any
 * reason listed at verifyTlsCertificate.
 */
export async function checkTlsCertificate(runner: CommandRunner, host: NetworkHost, now: Date = new Date()): Promise<CertificateFacts> {
  // An encrypted key gets an empty passphrase and fails, as it would in
  // nginx. Without -passin, openssl would wait for a passphrase.
  const result = await runner.run(
    `cert=${q(host.tlsCertificatePath)}
key=${q(host.tlsKeyPath)}
if [ ! -f "$cert" ] || [ ! -r "$cert" ]; then echo missing=certificate; exit 0; fi
if [ ! -f "$key" ] || [ ! -r "$key" ]; then echo missing=key; exit 0; fi
cat "$cert"
echo VOME_PUBLIC_KEY
openssl pkey -in "$key" -pubout -passin pass:`,
    { label: 'check-tls-certificate', timeoutMs: 30_000, check: false },
  );

  const missing = /^missing=(certificate|key)$/m.exec(result.stdout)?.[1];
  if (missing !== undefined) {
    const path = missing === 'key' ? host.tlsKeyPath : host.tlsCertificatePath;
    throw new InvalidInputError(`TLS ${missing} file ${path} not found on host "${runner.hostName}", or not a readable file`, {
      hints: [`install the wildcard certificate for *.${host.haDomain} and its key on the host, or correct the host's TLS paths`],
      fields: { host: runner.hostName, path },
    });
  }
  const [certificatePem = '', publicKeyPem = ''] = result.stdout.split('VOME_PUBLIC_KEY\n');
  if (result.exitCode !== 0) {
    throw new InvalidInputError(
      `cannot read the TLS key ${host.tlsKeyPath} on host "${runner.hostName}": ${result.stderr.trim().split('\n')[0] ?? 'openssl failed'}`,
      {
        hints: ['the key must be an unencrypted PEM private key that root can read'],
        fields: { host: runner.hostName, path: host.tlsKeyPath, stderr: result.stderr },
      },
    );
  }

  return verifyTlsCertificate(
    { certificatePem, publicKeyPem, haDomain: host.haDomain, certificatePath: host.tlsCertificatePath, keyPath: host.tlsKeyPath },
    now,
  );
}

/**
 * Checks that a certificate suits vome's nginx site: it has a wildcard DNS
 * name that covers every `<subdomain>.<haDomain>`, it is valid at `now`, and
 * its public key is the key file's.
 *
 * @throws InvalidInputError naming what is wrong (the names on the
 * certificate and the expected one, the dates, or the key mismatch) and
 * what to do.
 */
export function verifyTlsCertificate(input: CertificateInput, now: Date): CertificateFacts {
  const certificate = parseCertificate(input);
  const domain = input.haDomain.toLowerCase();
  const dnsNames = parseDnsNames(certificate.subjectAltName);
  const notBefore = new Date(certificate.validFrom);
  const notAfter = new Date(certificate.validTo);

  // checkHost with subject "never" ignores the common name, as browsers do.
  // The explicit wildcard keeps a certificate for the one name x.<domain> out.
  const hasWildcard = dnsNames.some((name) => name.toLowerCase() === `*.${domain}`);
  if (!hasWildcard || certificate.checkHost(`x.${domain}`, { subject: 'never', wildcards: true }) === undefined) {
    const names = dnsNames.length > 0 ? dnsNames.join(', ') : 'no DNS names';
    throw new InvalidInputError(`TLS certificate ${input.certificatePath} does not cover *.${domain}: it is for ${names}`, {
      hints: [`install a certificate whose subjectAltName contains DNS:*.${domain} (a wildcard needs DNS-01 validation with Let's Encrypt)`],
      fields: { path: input.certificatePath, dnsNames, expected: `*.${domain}` },
    });
  }
  if (now.getTime() < notBefore.getTime()) {
    throw new InvalidInputError(
      `TLS certificate ${input.certificatePath} is not valid yet: it is valid from ${notBefore.toISOString()}, and it is now ${now.toISOString()}`,
      {
        hints: ['check the clocks of vome and the host, or wait until the certificate becomes valid'],
        fields: { path: input.certificatePath, notBefore: notBefore.toISOString() },
      },
    );
  }
  if (now.getTime() > notAfter.getTime()) {
    throw new InvalidInputError(`TLS certificate ${input.certificatePath} expired on ${notAfter.toISOString()}`, {
      hints: [`renew the certificate for *.${domain} and install it at ${input.certificatePath}`],
      fields: { path: input.certificatePath, notAfter: notAfter.toISOString() },
    });
  }
  requireMatchingKey(certificate, input);

  return {
    subject: certificate.subject,
    issuer: certificate.issuer,
    dnsNames,
    notBefore,
    notAfter,
    daysLeft: Math.floor((notAfter.getTime() - now.getTime()) / DAY_MS),
    fingerprint256: certificate.fingerprint256,
  };
}

function parseCertificate(input: CertificateInput): X509Certificate {
  const first = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(input.certificatePem)?.[0];
  if (first === undefined) {
    throw new InvalidInputError(`TLS certificate ${input.certificatePath} contains no PEM certificate`, {
      hints: ['the file must start with the server certificate in PEM form ("-----BEGIN CERTIFICATE-----"), followed by any intermediates'],
      fields: { path: input.certificatePath },
    });
  }
  try {
    return new X509Certificate(first);
  } catch (error) {
    throw new InvalidInputError(`TLS certificate ${input.certificatePath} is not a valid X.509 certificate: ${(error as Error).message}`, {
      hints: ['install the certificate file as your certificate authority issued it, in PEM form'],
      fields: { path: input.certificatePath },
      cause: error,
    });
  }
}

function requireMatchingKey(certificate: X509Certificate, input: CertificateInput): void {
  let keyDer: Buffer;
  try {
    keyDer = createPublicKey(input.publicKeyPem).export({ type: 'spki', format: 'der' });
  } catch (error) {
    throw new InvalidInputError(`cannot read the public key of TLS key ${input.keyPath}: ${(error as Error).message}`, {
      hints: ['the key must be an unencrypted PEM private key'],
      fields: { path: input.keyPath },
      cause: error,
    });
  }
  const certificateDer = certificate.publicKey.export({ type: 'spki', format: 'der' });
  if (!keyDer.equals(certificateDer)) {
    throw new InvalidInputError(`TLS key ${input.keyPath} does not match the certificate ${input.certificatePath}: their public keys differ`, {
      hints: [`install the key that the certificate was issued for at ${input.keyPath}, or a certificate issued for this key`],
      fields: { path: input.keyPath, certificatePath: input.certificatePath },
    });
  }
}

/** Extracts the DNS entries of Node's subjectAltName text, e.g. "DNS:*.ha.test, DNS:ha.test". */
function parseDnsNames(subjectAltName: string | undefined): string[] {
  if (subjectAltName === undefined) {
    return [];
  }
  return subjectAltName
    .split(', ')
    .filter((entry) => entry.startsWith('DNS:'))
    .map((entry) => entry.slice('DNS:'.length));
}
