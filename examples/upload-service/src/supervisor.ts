// Watches a database process the service started (its FerretDB, and the
// PostgreSQL under it when it started one). When the process dies it is
// restarted on the same port, with a backoff that doubles up to maxDelayMs,
// and the log gets one line per change of state, not one per request:
// "exited", the first failed restart, "running again".
import type { ChildProcess } from 'child_process';

export interface Started {
  pid?: number;
  process: ChildProcess;
  stop(signal?: string): Promise<void>;
}

export interface SupervisorOptions {
  initialDelayMs?: number;
  maxDelayMs?: number;
  log?: (line: string) => void;
}

export class Supervisor<T extends Started> {
  private current: T | null = null;
  private stopping = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly initialDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly log: (line: string) => void;
  /** 'up', 'down' (restarts failing) or 'stopped'. */
  state: 'up' | 'down' | 'stopped' = 'stopped';

  constructor(
    private readonly name: string,
    private readonly start: () => Promise<T>,
    options: SupervisorOptions = {},
  ) {
    this.initialDelayMs = options.initialDelayMs ?? 500;
    this.maxDelayMs = options.maxDelayMs ?? 30_000;
    this.log = options.log ?? ((line) => console.warn(line));
  }

  /** The first start: a failure here is the caller's (the service does not start). */
  async run(): Promise<T> {
    this.current = await this.start();
    this.state = 'up';
    this.watch(this.current);
    return this.current;
  }

  get process(): T | null {
    return this.current;
  }

  private watch(started: T): void {
    started.process.once('exit', (code, signal) => {
      if (this.stopping || started !== this.current) return;
      this.state = 'down';
      this.log(`${this.name} (pid ${started.pid}) exited (${signal ?? `code ${code}`}); restarting it, retrying with backoff up to ${this.maxDelayMs / 1000} s`);
      this.schedule(this.initialDelayMs, true);
    });
  }

  private schedule(delayMs: number, firstTry: boolean): void {
    this.timer = setTimeout(async () => {
      if (this.stopping) return;
      try {
        const started = await this.start();
        if (this.stopping) return void (await started.stop());
        this.current = started;
        this.state = 'up';
        this.watch(started);
        this.log(`${this.name} running again (pid ${started.pid})`);
      } catch (err) {
        if (firstTry) this.log(`${this.name} could not be restarted (${String((err as Error | null)?.message ?? err).split('\n')[0]}); still retrying`);
        this.schedule(Math.min(delayMs * 2, this.maxDelayMs), false);
      }
    }, delayMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.state = 'stopped';
    clearTimeout(this.timer);
    if (this.current) await this.current.stop();
  }
}
