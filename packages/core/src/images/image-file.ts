import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { execa } from 'execa';
import { z } from 'zod';
import { InvalidInputError } from '../errors/index.js';

/** Computes the SHA-256 of a file as lower-case hex. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);

async function readHead(path: string, length: number): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** Reports whether a file starts with the xz magic bytes. */
export async function isXz(path: string): Promise<boolean> {
  return (await readHead(path, XZ_MAGIC.length)).equals(XZ_MAGIC);
}

/** Decompresses an xz file to `target` with the `xz` tool. */
export async function decompressXz(source: string, target: string): Promise<void> {
  try {
    await execa('sh', ['-c', 'xz --decompress --stdout -- "$1" > "$2"', 'sh', source, target]);
  } catch (error) {
    throw new InvalidInputError(`cannot decompress ${source}: it is not a valid xz file`, { cause: error });
  }
}

const qemuImgInfoSchema = z.object({
  format: z.string(),
  'virtual-size': z.number().int().positive(),
  'actual-size': z.number().int().nonnegative().optional(),
  'backing-filename': z.string().optional(),
});

export interface ImageInfo {
  format: 'qcow2' | 'raw';
  virtualSizeBytes: number;
}

/**
 * Reads an image's real format and size with `qemu-img info`, and checks it:
 * a qcow2 must pass `qemu-img check`, and a raw image must start with a
 * partition table (MBR or GPT), since any bytes at all read as "raw".
 *
 * @throws InvalidInputError for an unreadable, corrupt or unsupported image.
 */
export async function inspectImage(path: string): Promise<ImageInfo> {
  const info = await execa('qemu-img', ['info', '--output=json', path], { reject: false });
  if (info.exitCode !== 0) {
    throw new InvalidInputError(`${path} is not a readable disk image: ${info.stderr.trim()}`, {
      hints: ['give a HAOS image (.qcow2.xz or .qcow2) or a raw disk image'],
    });
  }
  const parsed = qemuImgInfoSchema.parse(JSON.parse(info.stdout));
  if (parsed['backing-filename'] !== undefined) {
    // A base image with a backing file would make every server read that
    // file from the host, whatever it is.
    throw new InvalidInputError(`${path} has a backing file (${parsed['backing-filename']}); a base image must be self-contained`, {
      hints: [`flatten it first: qemu-img convert -O qcow2 ${path} flat.qcow2`],
    });
  }

  if (parsed.format === 'qcow2') {
    const check = await execa('qemu-img', ['check', '-f', 'qcow2', path], { reject: false });
    // Exit code 3 means leaked clusters only: wasted space, no corruption.
    if (check.exitCode !== 0 && check.exitCode !== 3) {
      // qemu-img check prints its verdict first ("N errors were found…") and
      // allocation figures last. An internal failure goes to stderr instead.
      const verdict = (check.stdout.trim() || check.stderr.trim()).split('\n').filter((line) => line.trim() !== '').slice(0, 2);
      throw new InvalidInputError(`${path} is a corrupt qcow2 image: ${verdict.join(' ')}`);
    }
    return { format: 'qcow2', virtualSizeBytes: parsed['virtual-size'] };
  }

  if (parsed.format === 'raw') {
    const head = await readHead(path, 1024);
    const hasMbr = head.length >= 512 && head[510] === 0x55 && head[511] === 0xaa;
    const hasGpt = head.length >= 520 && head.subarray(512, 520).toString('latin1') === 'EFI PART';
    if (!hasMbr && !hasGpt) {
      throw new InvalidInputError(`${path} is not a disk image: it is neither qcow2 nor a raw disk with a partition table`, {
        hints: ['give a HAOS image (.qcow2.xz or .qcow2) or a raw disk image'],
      });
    }
    return { format: 'raw', virtualSizeBytes: parsed['virtual-size'] };
  }

  throw new InvalidInputError(`${path} has format "${parsed.format}"; vome accepts qcow2 and raw images`);
}
