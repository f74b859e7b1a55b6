import { InvalidInputError } from '../errors/index.js';

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Describes what a DNS label may contain, for error messages and help text. */
export const DNS_LABEL_RULE = '1–63 characters of lower-case letters a–z, digits and hyphens, not starting or ending with a hyphen';

/** Reports whether a value is a lower-case DNS label. */
export function isDnsLabel(value: string): boolean {
  return DNS_LABEL.test(value);
}

/**
 * Checks that `value` is a lower-case DNS label and returns it.
 *
 * @throws InvalidInputError naming the field, the value and the rule.
 */
export function requireDnsLabel(field: string, value: string): string {
  if (!isDnsLabel(value)) {
    const shown = value.length > 70 ? `${value.slice(0, 70)}…` : value;
    throw new InvalidInputError(`invalid ${field} "${shown}": use ${DNS_LABEL_RULE}`, { fields: { [field]: value } });
  }
  return value;
}
