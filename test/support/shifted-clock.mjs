// Moves the clock of a portal process that the tests start with
// `node --import`. The offset in milliseconds is read from the file named by
// VOME_TEST_CLOCK_FILE on every call, so a test can jump the running portal
// 12 hours ahead. Timers are not affected.
import { readFileSync } from 'node:fs';

const file = process.env.VOME_TEST_CLOCK_FILE;
if (file) {
  const RealDate = Date;
  const offset = () => {
    try {
      return Number(readFileSync(file, 'utf8').trim()) || 0;
    } catch {
      return 0;
    }
  };
  // A Proxy keeps Date's statics (UTC, parse) and `instanceof Date` intact.
  globalThis.Date = new Proxy(RealDate, {
    construct(target, args, newTarget) {
      return Reflect.construct(target, args.length === 0 ? [RealDate.now() + offset()] : args, newTarget);
    },
    apply() {
      return new RealDate(RealDate.now() + offset()).toString();
    },
    get(target, property, receiver) {
      return property === 'now' ? () => RealDate.now() + offset() : Reflect.get(target, property, receiver);
    },
  });
}
