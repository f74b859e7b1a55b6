export * from './vome-error.js';
export * from './host-errors.js';
