import { setMaxListeners } from 'node:events';

/** Exit status of a command stopped by SIGINT or SIGTERM: 130, as shells report Ctrl-C (128 + SIGINT, 2). */
export const interruptedExitCode = 130;

/** Action on a second SIGINT or SIGTERM while the command winds down after the first. */
export type RepeatAction = 'exit' | 'ignore';

export interface InterruptOptions {
  /** Called once, on the first signal, after `Interrupt.signal` is aborted. */
  readonly onFirst?: (signal: NodeJS.Signals) => void;
  /**
   * `exit` (the default) calls `onExit` and ends the process at once with
   * status 130. `ignore` lets the command finish its cleanup, for commands
   * that must stop the processes they started.
   */
  readonly onRepeat?: RepeatAction;
  /** Called before the process exits on a repeated signal, for example to print why. */
  readonly onExit?: (signal: NodeJS.Signals) => void;
}

/** A watch on SIGINT and SIGTERM for the lifetime of one command. */
export interface Interrupt {
  /** Aborted on the first SIGINT or SIGTERM. */
  readonly signal: AbortSignal;
  /** The first SIGINT or SIGTERM received, or null before it. */
  readonly received: NodeJS.Signals | null;
  /** Removes the listeners, so that the signals get their default action again. */
  dispose(): void;
}

/**
 * Starts listening for SIGINT and SIGTERM. The first one aborts `signal`, so
 * the command can stop its work and report what it did. A repeated one exits
 * or is ignored, as set by `onRepeat`.
 */
export function watchInterrupt(options: InterruptOptions = {}): Interrupt {
  const controller = new AbortController();
  // Every append that waits to retry listens for the abort, and a command
  // runs up to thousands at once, well past Node's default warning at 10.
  setMaxListeners(0, controller.signal);
  let received: NodeJS.Signals | null = null;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (received === null) {
      received = signal;
      controller.abort();
      options.onFirst?.(signal);
      return;
    }
    if ((options.onRepeat ?? 'exit') === 'exit') {
      options.onExit?.(signal);
      process.exit(interruptedExitCode);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    get received() {
      return received;
    },
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
