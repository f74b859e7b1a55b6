// Preloaded into a portal process by the tests (node --import): moves the
// process's clock by the number of milliseconds written in the file named by
// VOME_TEST_CLOCK_FILE, read on every call, so that a test can jump the
// running portal 12 hours ahead. Timers are not affected.
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
