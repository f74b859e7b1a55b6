import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

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
