import { createHash } from 'node:crypto';
import { constants, createReadStream, createWriteStream, type Stats } from 'node:fs';
import { type FileHandle, lstat, open, rm, statfs } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { execa } from 'execa';
import { z } from 'zod';
import { InvalidInputError, VomeError } from '../errors/index.js';

/**
 * Maximum size of an image file: a download, a copied local file, or the
 * output of xz decompression. The value is a product choice that leaves room
 * for raw disk images and keeps an xz bomb from filling the disk.
 */
export const MAX_IMAGE_BYTES = 64 * 2 ** 30;

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

/** Formats a byte count for messages, exact and, from 1 GiB on, in GiB too. */
export function formatBytes(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB (${bytes} bytes)` : `${bytes} bytes`;
}

/**
 * Checks that an image of `bytes` bytes is within MAX_IMAGE_BYTES and fits in
 * the free space of `folder`. `subject` names the image in messages.
 *
 * @throws InvalidInputError above the maximum, VomeError `insufficient_disk_space` when it does not fit.
 */
export async function requireRoomForImage(subject: string, bytes: number, folder: string): Promise<void> {
  if (bytes > MAX_IMAGE_BYTES) {
    throw new InvalidInputError(`${subject} is too large: ${formatBytes(bytes)}, above the maximum image size of ${formatBytes(MAX_IMAGE_BYTES)}`, {
      fields: { bytes, maxBytes: MAX_IMAGE_BYTES },
    });
  }
  const { bavail, bsize } = await statfs(folder);
  const free = bavail * bsize;
  if (bytes > free) {
    throw new VomeError('insufficient_disk_space', `not enough free space for ${subject}: it needs ${formatBytes(bytes)}, and ${folder} has ${formatBytes(free)} free`, {
      hints: ['free space on the disk of VOME_HOME, or move VOME_HOME to a larger disk'],
      fields: { bytes, freeBytes: free },
    });
  }
}

export interface WriteLimits {
  /** The stream fails with `tooLarge()` once it has carried more bytes than this. */
  maxBytes: number;
  tooLarge: () => Error;
  /** Called for every chunk, e.g. to restart a stall timer. */
  onData?: () => void;
}

/**
 * Writes a stream to a new file (mode 0600, which must not exist yet), and
 * returns the number of bytes written. The partial file is removed on every
 * failure, but a file that existed before is left alone.
 *
 * @throws the `tooLarge()` error above `maxBytes`, VomeError `image_write_failed` when writing fails, or the error of `source`.
 */
export async function writeStreamToFile(source: Readable, target: string, limits: WriteLimits): Promise<number> {
  let written = 0;
  let limitError: Error | undefined;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      limits.onData?.();
      written += chunk.length;
      if (written > limits.maxBytes) {
        limitError = limits.tooLarge();
        callback(limitError);
        return;
      }
      callback(null, chunk);
    },
  });
  const file = createWriteStream(target, { flags: 'wx', mode: 0o600 });
  let created = false;
  file.once('open', () => {
    created = true;
  });
  // pipeline passes the first error to every stream, so the stream that
  // emits an error first is the one that failed.
  let firstToFail: 'source' | 'file' | undefined;
  source.once('error', () => {
    firstToFail ??= 'source';
  });
  file.once('error', () => {
    firstToFail ??= 'file';
  });
  try {
    await pipeline(source, counter, file);
    return written;
  } catch (error) {
    if (created) {
      await rm(target, { force: true });
    }
    if (error !== limitError && firstToFail === 'file') {
      throw new VomeError('image_write_failed', `cannot write ${target}: ${(error as Error).message}`, { cause: error });
    }
    throw error;
  }
}

function symbolicLinkRejected(path: string, cause?: unknown): InvalidInputError {
  return new InvalidInputError(`image file ${path} is a symbolic link, which vome does not follow`, {
    hints: [`give the path of the file itself, which readlink -f ${path} prints`],
    cause,
  });
}

function requireRegularFile(path: string, info: Stats): void {
  if (info.isSymbolicLink()) {
    throw symbolicLinkRejected(path);
  }
  if (!info.isFile()) {
    throw new InvalidInputError(`image file ${path} is not a regular file`);
  }
}

/**
 * Copies an operator's image file to `target`, so that every later step
 * reads a private copy, which changes to the operator's path cannot reach.
 * The source must be a regular file. A symbolic link at the last component
 * is rejected, also when one replaces the file between the check and the
 * open (O_NOFOLLOW).
 *
 * @throws InvalidInputError when the file is missing, unreadable, not a regular file or too large.
 */
export async function copyImageFile(source: string, target: string): Promise<void> {
  const notFound = (cause: unknown): InvalidInputError =>
    new InvalidInputError(`image file ${source} not found or not readable`, { hints: ['check the path, or give an https:// URL'], cause });

  let checked: Stats;
  try {
    checked = await lstat(source);
  } catch (error) {
    throw notFound(error);
  }
  requireRegularFile(source, checked);

  let handle: FileHandle;
  try {
    // O_NONBLOCK keeps the open from hanging when a FIFO has replaced the file.
    handle = await open(source, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOOP') {
      // A symbolic link replaced the file after the lstat above.
      throw symbolicLinkRejected(source, error);
    }
    throw notFound(error);
  }
  try {
    const opened = await handle.stat();
    if (!opened.isFile() || opened.dev !== checked.dev || opened.ino !== checked.ino) {
      throw new InvalidInputError(`image file ${source} was replaced while vome opened it`, { hints: ['add the image again once nothing changes the file'] });
    }
    await requireRoomForImage(source, opened.size, dirname(target));
    await writeStreamToFile(handle.createReadStream({ autoClose: false, start: 0 }), target, {
      maxBytes: MAX_IMAGE_BYTES,
      tooLarge: () => new InvalidInputError(`${source} is too large: it grew above the maximum image size of ${formatBytes(MAX_IMAGE_BYTES)} while being copied`),
    });
  } finally {
    await handle.close();
  }
}

/** Turns xz's stderr into a reason without the "xz: <path>: " prefix. */
function xzReason(stderr: string, path: string): string {
  const lines = stderr
    .split('\n')
    .map((line) => line.replace(/^xz: /, '').replace(`${path}: `, '').trim())
    .filter((line) => line !== '');
  return lines.join('; ') || 'xz failed without a message';
}

/**
 * Reads the uncompressed size that the index of an xz file records, summed
 * over all streams, with `xz --robot --list`. It reads no compressed data,
 * so the size is a claim that decompression must still hold to.
 *
 * @throws InvalidInputError when xz cannot read the file's index.
 */
export async function xzUncompressedSize(path: string, label = path): Promise<number> {
  const list = await execa('xz', ['--robot', '--list', '--', path], { reject: false });
  if (list.exitCode !== 0) {
    throw new InvalidInputError(`cannot decompress ${label}: ${xzReason(list.stderr, path)}`);
  }
  // Columns of the totals line: "totals", streams, blocks, compressed size,
  // uncompressed size, ratio, check, stream padding, files.
  const totals = list.stdout.split('\n').find((line) => line.startsWith('totals\t'));
  const size = Number(totals?.split('\t')[4]);
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new Error(`unexpected output of xz --robot --list for ${label}: ${list.stdout}`);
  }
  return size;
}

/**
 * Decompresses an xz file to `target` with the `xz` tool, which writes into
 * a pipe that this process reads, so xz ends with SIGPIPE when this process
 * dies. The uncompressed size from the xz index must be within
 * MAX_IMAGE_BYTES and the free space of the target's folder, and the
 * decompressed data must match it: the output is cut off as soon as it
 * exceeds that size. The partial target is removed on every failure.
 *
 * @throws InvalidInputError for a corrupt or oversized file (with xz's reason), VomeError for a full disk or a failed write.
 */
export async function decompressXz(source: string, target: string, label = source): Promise<void> {
  const claimed = await xzUncompressedSize(source, label);
  await requireRoomForImage(`the decompressed image of ${label}`, claimed, dirname(target));

  const xz = execa('xz', ['--decompress', '--stdout', '--memlimit-decompress=1GiB', '--', source], { stdin: 'ignore', buffer: { stdout: false }, reject: false });
  let written: number;
  try {
    written = await writeStreamToFile(xz.stdout, target, {
      maxBytes: claimed,
      tooLarge: () => new InvalidInputError(`cannot decompress ${label}: the decompressed data exceeds the ${formatBytes(claimed)} recorded in its xz index`),
    });
  } catch (error) {
    xz.kill();
    await xz;
    throw error;
  }

  const result = await xz;
  if (result.exitCode !== 0) {
    await rm(target, { force: true });
    throw new InvalidInputError(`cannot decompress ${label}: ${xzReason(result.stderr, source)}`);
  }
  if (written !== claimed) {
    await rm(target, { force: true });
    throw new InvalidInputError(`cannot decompress ${label}: the decompressed data has ${written} bytes, but its xz index records ${claimed}`);
  }
}

const qemuImgInfoSchema = z.object({
  format: z.string(),
  'virtual-size': z.number().int().positive(),
  'actual-size': z.number().int().nonnegative().optional(),
  'backing-filename': z.string().optional(),
  'full-backing-filename': z.string().optional(),
  'format-specific': z
    .object({
      type: z.string(),
      data: z
        .object({
          // Only a qcow2 with an external data file has these. The name is
          // missing when the image leaves it to the caller to give.
          'data-file': z.string().optional(),
          'data-file-raw': z.boolean().optional(),
        })
        .optional(),
    })
    .optional(),
});

export interface ImageInfo {
  format: 'qcow2' | 'raw';
  virtualSizeBytes: number;
}

/** Rejects an image that refers to another file, which every server would then read from its host. */
function requireSelfContained(label: string, info: z.infer<typeof qemuImgInfoSchema>): void {
  const backing = info['backing-filename'] ?? info['full-backing-filename'];
  if (backing !== undefined) {
    throw new InvalidInputError(`${label} has a backing file (${backing}); a base image must be self-contained`, {
      hints: [`flatten it first: qemu-img convert -O qcow2 ${label} flat.qcow2`],
    });
  }
  const data = info['format-specific']?.data;
  if (data?.['data-file'] !== undefined || data?.['data-file-raw'] !== undefined) {
    const name = data['data-file'] ?? 'its name is not recorded in the image';
    throw new InvalidInputError(`${label} has an external data file (${name}); a base image must be self-contained`, {
      hints: [`convert it to a plain qcow2 first: qemu-img convert -O qcow2 ${label} flat.qcow2`],
    });
  }
}

/**
 * Reads an image's real format and size with `qemu-img info`, and checks it.
 * The image must not refer to a backing file or an external data file. A
 * qcow2 must pass `qemu-img check`, and a raw image must start with a
 * partition table (MBR or GPT), since any bytes at all read as "raw".
 * `label` names the image in messages, in place of `path`.
 *
 * @throws InvalidInputError for an unreadable, corrupt, unsupported or not self-contained image.
 */
export async function inspectImage(path: string, label = path): Promise<ImageInfo> {
  // qemu-img reads a name that starts with "json:" as options, and one with
  // a colon before the first slash as a protocol (e.g. "nbd:"). An absolute
  // path starts with a slash, so qemu-img opens it as a plain file.
  const absolute = resolve(path);
  const named = (output: string): string => output.replaceAll(absolute, label);

  // Without --backing-chain, qemu-img info does not open the backing file,
  // and the chain is not needed because any backing file is rejected. Under
  // strace, qemu-img 7.2 (Debian 12, 7.2+dfsg-7+deb12u18) did not open the
  // data file either. NOTE: other QEMU builds may open it read-only here.
  const info = await execa('qemu-img', ['info', '--output=json', absolute], { reject: false });
  if (info.exitCode !== 0) {
    throw new InvalidInputError(`${label} is not a readable disk image: ${named(info.stderr.trim())}`, {
      hints: ['give a HAOS image (.qcow2.xz or .qcow2) or a raw disk image'],
    });
  }
  const parsed = qemuImgInfoSchema.parse(JSON.parse(info.stdout));
  requireSelfContained(label, parsed);

  if (parsed.format === 'qcow2') {
    const check = await execa('qemu-img', ['check', '-f', 'qcow2', absolute], { reject: false });
    // Exit code 3 means leaked clusters only: wasted space, no corruption.
    if (check.exitCode !== 0 && check.exitCode !== 3) {
      // qemu-img check prints its verdict first ("N errors were found…") and
      // allocation figures last. An internal failure goes to stderr instead.
      const verdict = (check.stdout.trim() || check.stderr.trim()).split('\n').filter((line) => line.trim() !== '').slice(0, 2);
      throw new InvalidInputError(`${label} is a corrupt qcow2 image: ${named(verdict.join(' '))}`);
    }
    return { format: 'qcow2', virtualSizeBytes: parsed['virtual-size'] };
  }

  if (parsed.format === 'raw') {
    const head = await readHead(absolute, 1024);
    const hasMbr = head.length >= 512 && head[510] === 0x55 && head[511] === 0xaa;
    const hasGpt = head.length >= 520 && head.subarray(512, 520).toString('latin1') === 'EFI PART';
    if (!hasMbr && !hasGpt) {
      throw new InvalidInputError(`${label} is not a disk image: it is neither qcow2 nor a raw disk with a partition table`, {
        hints: ['give a HAOS image (.qcow2.xz or .qcow2) or a raw disk image'],
      });
    }
    return { format: 'raw', virtualSizeBytes: parsed['virtual-size'] };
  }

  throw new InvalidInputError(`${label} has format "${parsed.format}"; vome accepts qcow2 and raw images`);
}
