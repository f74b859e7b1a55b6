import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../../src/errors/index.js';
import { type CertificateInput, verifyTlsCertificate } from '../../../src/network/tls-certificate.js';
import { hasCommand, requirement } from '../../support/requirements.js';

const tools = requirement(hasCommand('openssl'), 'openssl is missing (package openssl)');
const DAY_MS = 86_400_000;

/** Certificates and keys made with the openssl CLI in a temporary folder. */
class CertificateFiles {
  readonly dir = mkdtempSync(join(tmpdir(), 'vome-tls-unit-'));

  /** Makes an EC P-256 key and returns its path. */
  key(name: string): string {
    const path = join(this.dir, `${name}.key`);
    execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path], { stdio: 'ignore' });
    return path;
  }

  /** Makes a self-signed certificate for `keyPath`, valid for 30 days from now, and returns its PEM. */
  certificate(name: string, keyPath: string, subject: string, altNames: string | null): string {
    const path = join(this.dir, `${name}.pem`);
    const extension = altNames === null ? [] : ['-addext', `subjectAltName=${altNames}`];
    execFileSync('openssl', ['req', '-x509', '-key', keyPath, '-subj', subject, ...extension, '-days', '30', '-out', path], { stdio: 'ignore' });
    return readFileSync(path, 'utf8');
  }

  /** Returns the SPKI PEM of a key, as `openssl pkey -pubout` prints it on the host. */
  publicKey(keyPath: string): string {
    return execFileSync('openssl', ['pkey', '-in', keyPath, '-pubout'], { encoding: 'utf8' });
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Returns the error that `action` throws, or fails the test when it throws nothing. */
function thrownBy(action: () => unknown): InvalidInputError {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidInputError);
    return error as InvalidInputError;
  }
  throw new Error('expected an error, but none was thrown');
}

describe.runIf(tools)('verifyTlsCertificate', () => {
  const files = new CertificateFiles();
  let wildcard: string;
  let publicKey: string;
  let otherPublicKey: string;
  let otherDomain: string;
  let singleName: string;
  let commonNameOnly: string;
  let rsa: string;
  let rsaPublicKey: string;
  let notBefore: Date;
  let notAfter: Date;

  function input(certificatePem: string, publicKeyPem: string = publicKey): CertificateInput {
    return { certificatePem, publicKeyPem, haDomain: 'ha.test', certificatePath: '/etc/vome/tls/fullchain.pem', keyPath: '/etc/vome/tls/privkey.pem' };
  }

  beforeAll(() => {
    const key = files.key('main');
    const otherKey = files.key('other');
    const rsaKey = join(files.dir, 'rsa.key');
    execFileSync('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', rsaKey], { stdio: 'ignore' });

    wildcard = files.certificate('wildcard', key, '/CN=*.ha.test', 'DNS:*.ha.test,DNS:ha.test');
    otherDomain = files.certificate('other-domain', key, '/CN=*.other.test', 'DNS:*.other.test,DNS:other.test');
    singleName = files.certificate('single-name', key, '/CN=x.ha.test', 'DNS:x.ha.test');
    commonNameOnly = files.certificate('common-name-only', key, '/CN=*.ha.test', null);
    rsa = files.certificate('rsa', rsaKey, '/CN=*.ha.test', 'DNS:*.ha.test');
    publicKey = files.publicKey(key);
    otherPublicKey = files.publicKey(otherKey);
    rsaPublicKey = files.publicKey(rsaKey);

    const parsed = new X509Certificate(wildcard);
    notBefore = new Date(parsed.validFrom);
    notAfter = new Date(parsed.validTo);
  });

  afterAll(() => files.remove());

  it('returns the facts of a matching wildcard certificate', () => {
    const facts = verifyTlsCertificate(input(wildcard), new Date(notBefore.getTime() + DAY_MS));
    expect(facts.dnsNames).toEqual(['*.ha.test', 'ha.test']);
    expect(facts.subject).toBe('CN=*.ha.test');
    expect(facts.issuer).toBe('CN=*.ha.test');
    expect(facts.notBefore).toEqual(notBefore);
    expect(facts.notAfter).toEqual(notAfter);
    expect(facts.daysLeft).toBe(29);
    expect(facts.fingerprint256).toBe(new X509Certificate(wildcard).fingerprint256);
  });

  it('accepts an RSA certificate with its key', () => {
    expect(verifyTlsCertificate(input(rsa, rsaPublicKey), notBefore).dnsNames).toEqual(['*.ha.test']);
  });

  it('accepts the domain in upper case', () => {
    expect(verifyTlsCertificate({ ...input(wildcard), haDomain: 'HA.Test' }, notBefore).dnsNames).toEqual(['*.ha.test', 'ha.test']);
  });

  it('checks the first certificate of a chain', () => {
    expect(verifyTlsCertificate(input(`${wildcard}${otherDomain}`), notBefore).dnsNames).toEqual(['*.ha.test', 'ha.test']);
  });

  it('accepts the last second of validity', () => {
    expect(verifyTlsCertificate(input(wildcard), notAfter).daysLeft).toBe(0);
  });

  it.each([
    ['another domain', () => otherDomain, 'TLS certificate /etc/vome/tls/fullchain.pem does not cover *.ha.test: it is for *.other.test, other.test'],
    ['a single name', () => singleName, 'TLS certificate /etc/vome/tls/fullchain.pem does not cover *.ha.test: it is for x.ha.test'],
    ['only a common name', () => commonNameOnly, 'TLS certificate /etc/vome/tls/fullchain.pem does not cover *.ha.test: it is for no DNS names'],
  ])('rejects a certificate for %s', (_case, certificate, message) => {
    const error = thrownBy(() => verifyTlsCertificate(input(certificate()), notBefore));
    expect(error.message).toBe(message);
    expect(error.hints).toEqual([
      'install a certificate whose subjectAltName contains DNS:*.ha.test (a wildcard needs DNS-01 validation with Let\'s Encrypt)',
    ]);
  });

  it('rejects an expired certificate', () => {
    const error = thrownBy(() => verifyTlsCertificate(input(wildcard), new Date(notAfter.getTime() + 1000)));
    expect(error.message).toBe(`TLS certificate /etc/vome/tls/fullchain.pem expired on ${notAfter.toISOString()}`);
    expect(error.hints).toEqual(['renew the certificate for *.ha.test and install it at /etc/vome/tls/fullchain.pem']);
  });

  it('rejects a certificate that is not valid yet', () => {
    const now = new Date(notBefore.getTime() - 1000);
    const error = thrownBy(() => verifyTlsCertificate(input(wildcard), now));
    expect(error.message).toBe(
      `TLS certificate /etc/vome/tls/fullchain.pem is not valid yet: it is valid from ${notBefore.toISOString()}, and it is now ${now.toISOString()}`,
    );
  });

  it('rejects a key that does not match', () => {
    const error = thrownBy(() => verifyTlsCertificate(input(wildcard, otherPublicKey), notBefore));
    expect(error.message).toBe('TLS key /etc/vome/tls/privkey.pem does not match the certificate /etc/vome/tls/fullchain.pem: their public keys differ');
    expect(error.hints).toEqual([
      'install the key that the certificate was issued for at /etc/vome/tls/privkey.pem, or a certificate issued for this key',
    ]);
  });

  it('rejects a file without a PEM certificate', () => {
    const error = thrownBy(() => verifyTlsCertificate(input(''), notBefore));
    expect(error.message).toBe('TLS certificate /etc/vome/tls/fullchain.pem contains no PEM certificate');
  });

  it('rejects a damaged certificate', () => {
    const damaged = '-----BEGIN CERTIFICATE-----\nTUlJQg==\n-----END CERTIFICATE-----\n';
    const error = thrownBy(() => verifyTlsCertificate(input(damaged), notBefore));
    expect(error.message).toMatch(/^TLS certificate \/etc\/vome\/tls\/fullchain\.pem is not a valid X\.509 certificate: /);
  });

  it('rejects an unreadable public key', () => {
    const error = thrownBy(() => verifyTlsCertificate(input(wildcard, 'not a key'), notBefore));
    expect(error.message).toMatch(/^cannot read the public key of TLS key \/etc\/vome\/tls\/privkey\.pem: /);
  });
});
