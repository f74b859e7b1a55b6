/** A step of an operation changed state; front ends render these. */
export interface ProgressEvent {
  operationId: string;
  kind: string;
  server: string;
  step: string;
  index: number;
  total: number;
  state: 'started' | 'done' | 'skipped' | 'failed';
  error?: string;
}

export type ProgressListener = (event: ProgressEvent) => void;
