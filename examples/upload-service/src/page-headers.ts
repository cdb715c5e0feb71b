// Headers for the service's own page: a CSP that lets only its own inline
// script and style run (by hash), talks only to its own origin, and forbids
// framing (frame-ancestors, and X-Frame-Options for older browsers).
import { createHash } from 'crypto';
import { readFileSync } from 'fs';
import path from 'path';
import type { Response } from 'express';

const PAGE = path.join(__dirname, '..', 'public', 'index.html');

function inlineHashes(html: string, tag: 'script' | 'style'): string {
  const blocks = [...html.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g'))].map((m) => m[1]);
  return blocks.map((b) => `'sha256-${createHash('sha256').update(b).digest('base64')}'`).join(' ');
}

let csp: string | undefined;
export function pageCsp(): string {
  if (csp === undefined) {
    const html = readFileSync(PAGE, 'utf8');
    csp = [
      "default-src 'none'",
      `script-src ${inlineHashes(html, 'script')}`,
      `style-src ${inlineHashes(html, 'style')}`,
      "connect-src 'self'",
      "img-src 'self'",
      "form-action 'self'",
      "base-uri 'none'",
      "frame-ancestors 'none'",
    ].join('; ');
  }
  return csp;
}

export function pageHeaders(res: Response, filePath: string): void {
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('X-Frame-Options', 'DENY');
  if (filePath.endsWith('.html')) res.setHeader('Content-Security-Policy', pageCsp());
}
