/**
 * Structured facts attached to an error: the objects it concerns and what a
 * host command returned. Never a secret.
 */
export interface ErrorFields {
  server?: string;
  host?: string;
  account?: string;
  image?: string;
  operation?: string;
  command?: string;
  exitCode?: number;
  stderr?: string;
  [key: string]: unknown;
}

export interface VomeErrorOptions {
  hints?: string[];
  fields?: ErrorFields;
  cause?: unknown;
}

/**
 * Base class of every error that core raises on purpose. `code` is stable and
 * part of the CLI's JSON output; `message` is written for the person who must
 * act; `hints` say what to try next.
 *
 * @example
 * throw new NotFoundError('host', 'ha-1', { hints: ['run `vome host list`'] });
 */
export class VomeError extends Error {
  readonly code: string;
  readonly hints: string[];
  readonly fields: ErrorFields;

  constructor(code: string, message: string, options: VomeErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.hints = options.hints ?? [];
    this.fields = options.fields ?? {};
  }

  toJSON(): { code: string; message: string; hints: string[]; fields: ErrorFields } {
    return { code: this.code, message: this.message, hints: this.hints, fields: this.fields };
  }
}

/** Input that breaks a rule: a name, a size, a flag. Nothing was changed. */
export class InvalidInputError extends VomeError {
  constructor(message: string, options: VomeErrorOptions = {}) {
    super('invalid_input', message, options);
  }
}

/** A named object that does not exist. */
export class NotFoundError extends VomeError {
  constructor(kind: string, name: string, options: VomeErrorOptions = {}) {
    super(`${kind}_not_found`, `${kind} "${name}" not found`, options);
  }
}

/** An object that would collide with an existing one. */
export class ConflictError extends VomeError {
  constructor(message: string, options: VomeErrorOptions = {}) {
    super('conflict', message, options);
  }
}

/** Settings missing or invalid in the environment or config file. */
export class ConfigError extends VomeError {
  constructor(message: string, options: VomeErrorOptions = {}) {
    super('invalid_config', message, options);
  }
}

/**
 * The actor may not act on this object. The message never reveals whether
 * the object exists, so a customer cannot probe for other customers' servers.
 */
export class ForbiddenError extends VomeError {
  constructor(message: string, options: VomeErrorOptions = {}) {
    super('forbidden', message, options);
  }
}

/** Another operation has the server's lock. */
export class ServerBusyError extends VomeError {
  constructor(message: string, options: VomeErrorOptions = {}) {
    super('server_busy', message, options);
  }
}

/** A host lacks something vome needs (a tool, the bridge, a running libvirt). */
export class HostNotReadyError extends VomeError {
  constructor(message: string, options: VomeErrorOptions = {}) {
    super('host_not_ready', message, options);
  }
}

/** The address range of a host has no free address left. */
export class AddressRangeFullError extends VomeError {
  constructor(host: string, range: string) {
    super('address_range_full', `host "${host}" has no free address left in ${range}`, {
      hints: ['destroy an unused server on this host, or create the server on another host'],
      fields: { host },
    });
  }
}

/** The audit chain is broken at an event. */
export class AuditChainError extends VomeError {
  constructor(message: string, options: VomeErrorOptions = {}) {
    super('audit_chain_broken', message, options);
  }
}
