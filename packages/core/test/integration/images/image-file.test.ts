import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../../src/errors/index.js';
import { decompressXz, inspectImage, isXz, sha256File } from '../../../src/images/image-file.js';
import { ImageFiles, sha256Of } from '../../support/image-files.js';
import { rejection } from '../../support/fixtures.js';
import { hasCommand, requirement } from '../../support/requirements.js';

const tools = requirement(hasCommand('qemu-img') && hasCommand('xz'), 'qemu-img or xz is missing (packages qemu-utils and xz-utils)');

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe.runIf(tools)('image files', () => {
  let folder: string;
  let files: ImageFiles;

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'vome-image-file-'));
    files = new ImageFiles(folder);
  });

  afterAll(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  describe('sha256File', () => {
    it('hashes a file', async () => {
      const path = await files.rawMbr('hash.raw');
      expect(await sha256File(path)).toBe(await sha256Of(path));
    });

    it('hashes an empty file', async () => {
      const path = join(folder, 'empty');
      await writeFile(path, '');
      expect(await sha256File(path)).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    });
  });

  describe('isXz', () => {
    it('recognises an xz file', async () => {
      expect(await isXz(await files.xz(await files.qcow2('for-xz.qcow2')))).toBe(true);
    });

    it.each([
      ['a qcow2', (f: ImageFiles) => f.qcow2('not-xz.qcow2')],
      ['a raw disk', (f: ImageFiles) => f.rawMbr('not-xz.raw')],
    ])('does not take %s for xz', async (_case, make) => {
      expect(await isXz(await make(files))).toBe(false);
    });
  });

  describe('decompressXz', () => {
    it('restores the original bytes', async () => {
      const original = await files.qcow2('round-trip.qcow2');
      const target = join(folder, 'round-trip.out');
      await decompressXz(await files.xz(original), target);
      expect(await sha256Of(target)).toBe(await sha256Of(original));
    });

    it('rejects a corrupt xz file', async () => {
      const source = await files.corruptXz();
      const error = await rejection(decompressXz(source, join(folder, 'corrupt.out')));
      expect(error).toBeInstanceOf(InvalidInputError);
      expect(error.message).toBe(`cannot decompress ${source}: it is not a valid xz file`);
    });
  });

  describe('inspectImage', () => {
    it('reads a qcow2', async () => {
      expect(await inspectImage(await files.qcow2('inspect.qcow2'))).toEqual({ format: 'qcow2', virtualSizeBytes: 67_108_864 });
    });

    it('reads a raw disk with an MBR', async () => {
      expect(await inspectImage(await files.rawMbr('inspect.raw'))).toEqual({ format: 'raw', virtualSizeBytes: 1_048_576 });
    });

    it('reads a raw disk with a GPT header', async () => {
      expect(await inspectImage(await files.rawGpt('inspect-gpt.raw'))).toEqual({ format: 'raw', virtualSizeBytes: 1_048_576 });
    });

    it('rejects random bytes as not a disk image', async () => {
      const path = await files.randomBytes();
      const error = await rejection(inspectImage(path));
      expect(error).toBeInstanceOf(InvalidInputError);
      expect(error.message).toBe(`${path} is not a disk image: it is neither qcow2 nor a raw disk with a partition table`);
    });

    it('rejects a qcow2 with a backing file', async () => {
      const base = await files.qcow2('backing-base.qcow2');
      const path = join(folder, 'with-backing.qcow2');
      const { execa } = await import('execa');
      await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', base, path]);
      const error = await rejection(inspectImage(path));
      expect(error).toBeInstanceOf(InvalidInputError);
      expect(error.message).toBe(`${path} has a backing file (${base}); a base image must be self-contained`);
    });

    it('rejects a qcow2 header followed by garbage', async () => {
      const path = await files.qcow2MagicThenGarbage();
      const error = await rejection(inspectImage(path));
      expect(error).toBeInstanceOf(InvalidInputError);
      // The rest is qemu-img's own reason, which differs between QEMU versions.
      expect(error.message).toMatch(new RegExp(`^${escapeRegExp(`${path} is not a readable disk image: qemu-img: Could not open '${path}': `)}.+`));
    });

    it('rejects a truncated qcow2 as corrupt', async () => {
      const path = await files.truncatedQcow2();
      const error = await rejection(inspectImage(path));
      expect(error).toBeInstanceOf(InvalidInputError);
      expect(error.message).toMatch(
        new RegExp(`^${escapeRegExp(`${path} is a corrupt qcow2 image: `)}\\d+ errors were found on the image\\. Data may be corrupted, or further writes to the image may corrupt it\\.$`),
      );
    });

    it('rejects a format other than qcow2 and raw', async () => {
      const path = await files.vmdk();
      const error = await rejection(inspectImage(path));
      expect(error).toBeInstanceOf(InvalidInputError);
      expect(error.message).toBe(`${path} has format "vmdk"; vome accepts qcow2 and raw images`);
    });

    it('rejects a missing file', async () => {
      const path = join(folder, 'missing.qcow2');
      const error = await rejection(inspectImage(path));
      expect(error).toBeInstanceOf(InvalidInputError);
      expect(error.message).toMatch(new RegExp(`^${escapeRegExp(`${path} is not a readable disk image: `)}`));
    });
  });
});
