// A minimum data rate for request bodies. The request timeout alone let a
// client sending 8 bytes a second hold its slot for two minutes and then
// reconnect; past a short grace, a body arriving slower than the minimum on
// average is cut off, and its slot comes back once multer has removed its
// partial files. Counted from the socket, so the body stream is not touched.
import type { NextFunction, Request, Response } from 'express';

export function minimumBodyRate(bytesPerSecond: number, graceMs: number, checkEveryMs = 250) {
  return (req: Request, res: Response, next: NextFunction) => {
    const socket = req.socket;
    const startBytes = socket.bytesRead;
    const started = Date.now();
    const timer = setInterval(() => {
      if (req.complete || socket.destroyed) return stop();
      const elapsed = Date.now() - started;
      if (elapsed < graceMs) return;
      const rate = ((socket.bytesRead - startBytes) * 1000) / elapsed;
      if (rate < bytesPerSecond) {
        stop();
        socket.destroy(); // multer sees the request aborted, removes its files and ends the work
      }
    }, checkEveryMs);
    timer.unref();
    const stop = () => clearInterval(timer);
    req.once('end', stop);
    res.once('close', stop);
    next();
  };
}
