import { Command, Errors, Flags, type Interfaces } from '@oclif/core';
import type { Actor, Db, HostContext, Logger, VomeConfig } from '@vome/core';
import { EXIT, exitCodeFor } from './exit-codes.js';

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>;

interface ErrorJson {
  code: string;
  message: string;
  hints: string[];
  fields: Record<string, unknown>;
}

/**
 * Shared behaviour of every `vome` command: `--json`, settings from the
 * environment, the database (opened on first use, migrated), and errors
 * rendered with their code, hints and exit code.
 */
export abstract class BaseCommand extends Command {
  static override enableJsonFlag = true;

  static override baseFlags = {
    'log-level': Flags.string({
      summary: 'Write structured logs to stderr at this level.',
      options: ['silent', 'fatal', 'error', 'warn', 'info', 'debug', 'trace'],
      helpGroup: 'GLOBAL',
    }),
  };

  private database: Db | undefined;
  private settings: VomeConfig | undefined;
  private logs: Logger | undefined;

  protected async config_(): Promise<VomeConfig> {
    if (!this.settings) {
      const { loadConfig } = await import('@vome/core');
      this.settings = loadConfig(process.env);
    }
    return this.settings;
  }

  protected async logger(): Promise<Logger> {
    if (!this.logs) {
      const { createLogger } = await import('@vome/core');
      const { flags } = await this.parse(this.constructor as typeof BaseCommand);
      const config = await this.config_();
      this.logs = createLogger((flags as { 'log-level'?: string })['log-level'] ?? config.logLevel);
    }
    return this.logs;
  }

  /** Opens the database, starting the embedded server and migrating as needed. */
  protected async db(): Promise<Db> {
    if (!this.database) {
      const { openDatabase } = await import('@vome/core');
      this.database = await openDatabase(await this.config_());
    }
    return this.database;
  }

  protected async context(): Promise<HostContext> {
    return { db: await this.db(), config: await this.config_(), logger: await this.logger() };
  }

  /** Returns the admin running this command, as recorded in audit events. */
  protected adminActor(): Actor {
    const login = process.env.SUDO_USER || process.env.USER || process.env.LOGNAME || `uid-${process.getuid?.() ?? 'unknown'}`;
    return { kind: 'admin', id: login };
  }

  /** Writes a progress or warning line to stderr unless --json is on. */
  protected note(message: string): void {
    if (!this.jsonEnabled()) {
      process.stderr.write(`${message}\n`);
    }
  }

  protected override async finally(error: Error | undefined): Promise<void> {
    await this.database?.destroy();
    return super.finally(error);
  }

  protected override async catch(error: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<void> {
    const { VomeError } = await import('@vome/core');
    if (error instanceof Errors.ExitError) {
      throw error;
    }
    if (error.oclif?.exit !== undefined && !(error instanceof VomeError)) {
      // A parse error (wrong flag or argument): under --json it is still one
      // JSON line on stderr, so scripts can read it.
      if (this.jsonEnabled()) {
        // oclif lists each problem on its own line; all of them are kept.
        const message = error.message.split('\n').map((line) => line.trim()).filter((line) => line !== '').join(' ');
        const usage: ErrorJson = { code: 'usage', message, hints: [`run \`vome ${this.id?.replaceAll(':', ' ') ?? ''} --help\``], fields: {} };
        process.stderr.write(`${JSON.stringify({ error: usage })}\n`);
        this.exit(error.oclif.exit);
      }
      throw error;
    }

    const json: ErrorJson =
      error instanceof VomeError
        ? error.toJSON()
        : { code: 'unexpected', message: error.message, hints: ['run again with --log-level debug; report it if it persists'], fields: {} };
    const exitCode = error instanceof VomeError ? exitCodeFor(error.code) : EXIT.failure;

    if (this.jsonEnabled()) {
      process.stderr.write(`${JSON.stringify({ error: json })}\n`);
    } else {
      const lines = [`Error: ${json.message}`, ...json.hints.map((hint) => `  hint: ${hint}`)];
      const stderr = typeof json.fields.stderr === 'string' && json.fields.stderr.trim() ? json.fields.stderr.trim() : '';
      if (stderr && !json.message.includes(stderr)) {
        lines.push(`  host output: ${stderr.split('\n').slice(-5).join('\n    ')}`);
      }
      process.stderr.write(`${lines.join('\n')}\n`);
    }
    await this.database?.destroy();
    this.database = undefined;
    this.exit(exitCode);
  }
}
