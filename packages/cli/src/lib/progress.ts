import type { OperationKind, ProgressEvent } from '@vome/core';

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (error: Error) => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((onResolve, onReject) => {
    resolve = onResolve;
    reject = onReject;
  });
  // Rejections are observed by listr2; this keeps an unobserved one quiet.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/**
 * Renders an operation's steps on stderr: listr2's task list on a terminal,
 * plain lines otherwise, nothing when `quiet` (--json). The list starts with
 * the first step event, so an error raised before any step (bad input)
 * prints no task list.
 */
export async function withProgress<T>(
  quiet: boolean,
  kind: OperationKind,
  server: string,
  run: (onProgress: (event: ProgressEvent) => void) => Promise<T>,
): Promise<T> {
  if (quiet) {
    return run(() => undefined);
  }
  const { Listr, ListrLogger, ProcessOutput } = await import('listr2');
  const { OPERATION_STEPS } = await import('@vome/core');
  const steps = OPERATION_STEPS[kind].map(() => deferred());
  let rendering: Promise<unknown> | undefined;

  const onProgress = (event: ProgressEvent): void => {
    if (!rendering) {
      // Both of listr2's streams go to stderr: stdout carries only results.
      const logger = new ListrLogger({ processOutput: new ProcessOutput(process.stderr, process.stderr) });
      const tasks = OPERATION_STEPS[kind].map((name, index) => ({
        title: `${kind} ${server}: ${name}`,
        task: () => steps[index]?.promise,
      }));
      const terminal = process.stderr.isTTY === true && (process.stderr.columns ?? 0) > 0;
      const listr = new Listr(tasks, {
        concurrent: false,
        exitOnError: true,
        renderer: terminal ? 'default' : 'simple',
        fallbackRenderer: 'simple',
        rendererOptions: { logger },
        fallbackRendererOptions: { logger },
      });
      rendering = listr.run().catch(() => undefined);
    }
    const step = steps[event.index];
    if (event.state === 'done' || event.state === 'skipped') {
      step?.resolve();
    } else if (event.state === 'failed') {
      step?.reject(new Error(event.error ?? 'failed'));
    }
  };

  try {
    return await run(onProgress);
  } catch (error) {
    for (const step of steps) {
      step.reject(error as Error);
    }
    throw error;
  } finally {
    await rendering;
  }
}
