// Caps on requests in flight. A slot is held until the request's work ends
// (its files removed or recorded, its database calls settled), not until the
// client hangs up: a client gone after its body still has work running, and
// counting it out let a hang-up flood pile up unbounded work behind a frozen
// database. Beyond the cap the service answers 503 at once, before reading
// the body, and closes the connection; beyond one client's share, 429.
import type { NextFunction, Request, Response } from 'express';
import { HttpError } from './http-errors';

/** Runs once the request's work has ended (see workEnded). */
export function whenWorkEnds(res: Response, done: () => void): void {
  (res.locals.onWorkEnd ??= [] as Array<() => void>).push(done);
}

/** The request's work is over: its slots and claims go back. Safe to call more than once. */
export function workEnded(res: Response): void {
  const callbacks: Array<() => void> = res.locals.onWorkEnd ?? [];
  res.locals.onWorkEnd = [];
  for (const done of callbacks) done();
}

export class Slots {
  private total = 0;
  private readonly byClient = new Map<string, number>();

  constructor(
    private readonly what: string,
    readonly max: number,
    readonly perClient: number,
  ) {}

  /** Slots held now. */
  get inUse(): number {
    return this.total;
  }

  middleware() {
    return (req: Request, res: Response, next: NextFunction) => {
      const client = req.socket.remoteAddress ?? '';
      const mine = this.byClient.get(client) ?? 0;
      if (this.total >= this.max || mine >= this.perClient) {
        res.setHeader('Connection', 'close'); // the unread body is not worth draining
        next(
          this.total >= this.max
            ? new HttpError(503, `too many ${this.what} in flight (${this.max}); try again shortly`, `ERR_TOO_MANY_${this.what.toUpperCase()}`, { 'Retry-After': '2' })
            : new HttpError(429, `too many ${this.what} in flight from one client (${this.perClient}); try again shortly`, `ERR_TOO_MANY_${this.what.toUpperCase()}_FROM_CLIENT`, {
                'Retry-After': '2',
              }),
        );
        return;
      }
      this.total += 1;
      this.byClient.set(client, mine + 1);
      whenWorkEnds(res, () => {
        this.total -= 1;
        const left = (this.byClient.get(client) ?? 1) - 1;
        if (left > 0) this.byClient.set(client, left);
        else this.byClient.delete(client);
      });
      next();
    };
  }
}
