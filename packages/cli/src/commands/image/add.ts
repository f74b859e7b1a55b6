import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../lib/base-command.js';
import { formatBytes } from '../../lib/render.js';
import { type ImageJson, imageJson } from './list.js';

export default class ImageAdd extends BaseCommand {
  static override summary = 'Register a base image (HAOS .qcow2.xz, .qcow2 or raw).';
  static override description = `Reads a local file (not a symlink) or downloads an https:// URL (redirects only to https, abandoned after 60 s without data), checks --sha256 against the file as given, decompresses xz, reads the real format with qemu-img (qcow2 must pass qemu-img check and have no backing or external data file; raw must have a partition table) and keeps a read-only copy under VOME_HOME. Images may be at most 64 GiB, decompressed. With --host it is also placed on those hosts now; otherwise each host receives it when its first server is created.`;
  static override examples = [
    '<%= config.bin %> image add ./haos_ova-16.3.qcow2.xz --name haos-16 --sha256 0123…',
    '<%= config.bin %> image add https://example.org/haos_ova-16.3.qcow2.xz --name haos-16 --host ha-1 --json',
  ];
  static override args = {
    source: Args.string({ description: 'Local path or https:// URL of the image.', required: true }),
  };
  static override flags = {
    name: Flags.string({ char: 'n', summary: 'Image name: a DNS label.', required: true }),
    sha256: Flags.string({ summary: 'Expected SHA-256 of the file as given (before decompression).' }),
    host: Flags.string({ summary: 'Place the image on this host now (repeatable).', multiple: true }),
  };

  async run(): Promise<ImageJson & { placedOn: string[] }> {
    const { args, flags } = await this.parse(ImageAdd);
    const core = await import('@vome/core');
    const context = await this.context();
    const hosts = await Promise.all((flags.host ?? []).map((name) => core.getHost(context.db, name)));
    this.note(`reading ${args.source}`);
    const image = await core.addImage(context, this.adminActor(), { name: flags.name, source: args.source, sha256: flags.sha256 });
    const placedOn: string[] = [];
    for (const host of hosts) {
      const runner = core.runnerForHost(context.config, context.logger, host);
      try {
        this.note(`placing ${image.name} on ${host.name}`);
        await core.placeImage(context, runner, host, image);
        placedOn.push(host.name);
      } finally {
        await runner.close();
      }
    }
    this.log(`added image ${image.name}: ${image.format}, ${formatBytes(Number(image.virtual_size_bytes))} virtual, sha256 ${image.sha256}`);
    return { ...imageJson(image), placedOn };
  }
}
