import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { open, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';

/** Builds test disk images in a folder with qemu-img and xz. */
export class ImageFiles {
  constructor(readonly folder: string) {}

  /** Creates an empty qcow2 of 64 MiB virtual size. */
  async qcow2(name = 'base.qcow2'): Promise<string> {
    const path = join(this.folder, name);
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', path, '64M']);
    return path;
  }

  /** Compresses a file with `xz -k`, keeping it, and returns the .xz path. */
  async xz(path: string): Promise<string> {
    execFileSync('xz', ['-k', '-T1', path]);
    return `${path}.xz`;
  }

  /** Writes a 1 MiB raw disk whose first sector carries the MBR boot signature. */
  async rawMbr(name = 'disk.raw'): Promise<string> {
    const data = Buffer.alloc(2 ** 20);
    data[510] = 0x55;
    data[511] = 0xaa;
    return this.write(name, data);
  }

  /** Writes a 1 MiB raw disk with a GPT header ("EFI PART") in its second sector. */
  async rawGpt(name = 'gpt.raw'): Promise<string> {
    const data = Buffer.alloc(2 ** 20);
    data.write('EFI PART', 512, 'latin1');
    return this.write(name, data);
  }

  /** Writes 1 MiB of random bytes with no partition table signature. */
  async randomBytes(name = 'random.bin'): Promise<string> {
    const data = randomBytes(2 ** 20);
    data.write('RAND', 0, 'latin1');
    data[510] = 0;
    data[511] = 0;
    return this.write(name, data);
  }

  /** Writes the qcow2 magic followed by garbage, so that the header is unreadable. */
  async qcow2MagicThenGarbage(name = 'garbage.qcow2'): Promise<string> {
    return this.write(name, Buffer.concat([Buffer.from([0x51, 0x46, 0x49, 0xfb]), Buffer.alloc(65_536, 'x')]));
  }

  /** Creates a qcow2 holding 4 MiB of data and cuts it off after its first MiB. */
  async truncatedQcow2(name = 'truncated.qcow2'): Promise<string> {
    const raw = join(this.folder, `${name}.source.raw`);
    const data = Buffer.alloc(4 * 2 ** 20);
    for (let offset = 0; offset < data.length; offset += 4) {
      data.writeUInt32BE(offset, offset);
    }
    await writeFile(raw, data);
    const path = join(this.folder, name);
    execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, path]);
    await truncate(path, 2 ** 20);
    return path;
  }

  /** Writes the xz magic followed by garbage. */
  async corruptXz(name = 'corrupt.qcow2.xz'): Promise<string> {
    return this.write(name, Buffer.concat([Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), Buffer.alloc(4096, 'x')]));
  }

  /** Creates a VMDK image, a format that vome rejects. */
  async vmdk(name = 'disk.vmdk'): Promise<string> {
    const path = join(this.folder, name);
    execFileSync('qemu-img', ['create', '-q', '-f', 'vmdk', path, '16M']);
    return path;
  }

  /**
   * Creates a qcow2 whose data lives in the external file `dataFileName`,
   * which `qemu-img create -o data_file=…,data_file_raw=on` creates (and would
   * overwrite) in this folder.
   */
  async qcow2WithDataFile(dataFileName: string, name = 'with-data-file.qcow2'): Promise<string> {
    const path = join(this.folder, name);
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', `data_file=${join(this.folder, dataFileName)},data_file_raw=on`, path, '16M']);
    return path;
  }

  /**
   * Creates a qcow2 with an external data file and then points that data file
   * at `dataFile` with `qemu-img amend`, which records the name without
   * opening the file. Tests pass a file of their own as `dataFile`, never a
   * system file.
   */
  async qcow2AmendedDataFile(dataFile: string, name = 'amended.qcow2'): Promise<string> {
    const path = join(this.folder, name);
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', `data_file=${path}.data`, path, '16M']);
    execFileSync('qemu-img', ['amend', '-q', '-f', 'qcow2', '-o', `data_file=${dataFile}`, path]);
    return path;
  }

  /**
   * Creates a qcow2 that needs an external data file but does not record its
   * name: the header extension with the name ("DATA") gets an unknown type,
   * which qemu-img skips.
   */
  async qcow2WithUnnamedDataFile(name = 'unnamed-data-file.qcow2'): Promise<string> {
    const path = await this.qcow2WithDataFile(`${name}.data`, name);
    const handle = await open(path, 'r+');
    try {
      const header = Buffer.alloc(4096);
      await handle.read(header, 0, header.length, 0);
      // Header extensions start after the header (its length is at byte 100
      // of a version 3 header); each is type, length and data padded to 8.
      let offset = header.readUInt32BE(100);
      while (header.readUInt32BE(offset) !== 0) {
        if (header.readUInt32BE(offset) === 0x44415441) {
          const unknownType = Buffer.alloc(4);
          unknownType.writeUInt32BE(0x0badf00d);
          await handle.write(unknownType, 0, 4, offset);
          return path;
        }
        offset += 8 + Math.ceil(header.readUInt32BE(offset + 4) / 8) * 8;
      }
      throw new Error(`no data file extension found in ${path}`);
    } finally {
      await handle.close();
    }
  }

  /**
   * Writes an xz file whose index claims `claimedBytes` of uncompressed data
   * while its only block holds `data`. `xz --list` reports the claim, and
   * `xz --decompress` writes all of `data` before it finds the mismatch.
   */
  async xzClaimingSize(claimedBytes: number, data: Buffer, name = 'claiming.xz'): Promise<string> {
    const compressed = execFileSync('xz', ['--compress', '--stdout', '-T1', '-0'], { input: data, maxBuffer: 2 ** 30 });
    return this.write(name, withXzIndexClaim(compressed, claimedBytes));
  }

  /**
   * Writes `streams` concatenated xz streams of 64 MiB of zeros each: a file of
   * about 10 KiB per stream that decompresses to `streams` × 64 MiB.
   */
  async xzOfZeros(streams: number, name = 'zeros.xz'): Promise<string> {
    const stream = execFileSync('xz', ['--compress', '--stdout', '-T1', '-0'], { input: Buffer.alloc(64 * 2 ** 20), maxBuffer: 2 ** 30 });
    return this.write(name, Buffer.concat(Array.from({ length: streams }, () => stream)));
  }

  private async write(name: string, data: Buffer): Promise<string> {
    const path = join(this.folder, name);
    await writeFile(path, data);
    return path;
  }
}

/** Computes the SHA-256 of a file as lower-case hex, reading it in one piece. */
export async function sha256Of(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

/** Reads a file's permission bits, size and content hash, to show that it was left alone. */
export async function fileState(path: string): Promise<{ mode: number; size: number; sha256: string }> {
  const info = await stat(path);
  return { mode: info.mode & 0o777, size: info.size, sha256: await sha256Of(path) };
}

function readVarint(data: Buffer, start: number): { value: number; next: number } {
  let value = 0;
  for (let index = start, shift = 0; ; index += 1, shift += 7) {
    const byte = data[index] ?? 0;
    value += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) {
      return { value, next: index + 1 };
    }
  }
}

function varint(value: number): Buffer {
  const bytes: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    bytes.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

function crc32Bytes(data: Buffer): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32LE(crc32(data));
  return bytes;
}

/**
 * Rewrites the index of a one-stream, one-block xz file so that it records
 * `uncompressedBytes`, with a valid CRC32 and stream footer. Layout from the
 * .xz file format specification 1.1.0, sections 2.1.2 (stream footer) and 4
 * (index).
 */
function withXzIndexClaim(xz: Buffer, uncompressedBytes: number): Buffer {
  const footer = xz.subarray(xz.length - 12);
  if (footer.subarray(10).toString('latin1') !== 'YZ') {
    throw new Error('not a single xz stream');
  }
  const indexSize = (footer.readUInt32LE(4) + 1) * 4;
  const indexStart = xz.length - 12 - indexSize;
  const records = readVarint(xz, indexStart + 1);
  if (xz[indexStart] !== 0 || records.value !== 1) {
    throw new Error('expected an xz index with one record');
  }
  const unpaddedSize = readVarint(xz, records.next).value;

  const fields = Buffer.concat([Buffer.from([0]), varint(1), varint(unpaddedSize), varint(uncompressedBytes)]);
  const padded = Buffer.concat([fields, Buffer.alloc((4 - (fields.length % 4)) % 4)]);
  const index = Buffer.concat([padded, crc32Bytes(padded)]);

  const newFooter = Buffer.alloc(12);
  newFooter.writeUInt32LE(index.length / 4 - 1, 4);
  footer.copy(newFooter, 8, 8, 12);
  crc32Bytes(newFooter.subarray(4, 10)).copy(newFooter, 0);
  return Buffer.concat([xz.subarray(0, indexStart), index, newFooter]);
}
