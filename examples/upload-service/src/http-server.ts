// The HTTP server around the app, with the timeouts that close trickling
// clients: headers must arrive within headersTimeoutMs and the whole request
// within requestTimeoutMs, however slowly its bytes keep coming.
import http from 'http';
import type { Express } from 'express';
import type { Limits } from './limits';

export function createServer(app: Express, limits: Pick<Limits, 'headersTimeoutMs' | 'requestTimeoutMs'>): http.Server {
  return http.createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      // How often Node checks those two; its default of 30 s would let a trickler live 30 s past them.
      connectionsCheckingInterval: Math.max(100, Math.min(1000, limits.headersTimeoutMs / 4)),
    },
    app,
  );
}

/** Listens, resolving once listening and rejecting on EADDRINUSE and the like (no unhandled 'error'). */
export function listen(server: http.Server, port: number, host?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
