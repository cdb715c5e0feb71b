// A cap on upload requests in flight. Beyond it the service answers 503 at
// once, before reading the body, and closes the connection, so a flood costs
// a counter, not memory, descriptors or disk.
import type { NextFunction, Request, Response } from 'express';
import { HttpError } from './http-errors';

export function limitInFlight(max: number) {
  let inFlight = 0;
  return (_req: Request, res: Response, next: NextFunction) => {
    if (inFlight >= max) {
      res.setHeader('Connection', 'close'); // the unread body is not worth draining
      next(new HttpError(503, `too many uploads in flight (${max}); try again shortly`, 'ERR_TOO_MANY_UPLOADS', { 'Retry-After': '2' }));
      return;
    }
    inFlight += 1;
    // 'close' comes once per response, whether it finished or the client went away.
    res.once('close', () => {
      inFlight -= 1;
    });
    next();
  };
}
