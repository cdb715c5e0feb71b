// Headers for serving an uploaded file. Uploads come from anyone, so the
// browser must never run them on the service's origin: they are downloads,
// except a few passive types shown inline, and every one goes out with
// nosniff and a CSP that forbids scripts and sandboxes the document.
import type { Response } from 'express';

/** Types a browser only displays; none of them runs script. SVG and HTML do, so they are not here. */
const INLINE_TYPES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/avif', 'application/pdf', 'text/plain', 'video/mp4', 'audio/mpeg']);

export const FILE_CSP = "default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'; sandbox";

/** RFC 5987 value characters: what encodeURIComponent leaves plus the few it escapes needlessly, minus those 5987 forbids. */
function encode5987(value: string): string {
  return encodeURIComponent(value).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * Characters that reorder how a name is shown: `invoice\u202Efdp.exe` shows
 * as `invoiceexe.pdf`. Never offered in a download name.
 */
const BIDI_CONTROLS = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * RFC 6266: an ASCII `filename` for old clients (anything else, quotes and
 * backslashes become `_`) and the exact name in `filename*=UTF-8''…`.
 */
export function contentDisposition(type: 'inline' | 'attachment', stored: string): string {
  const fileName = stored.replace(BIDI_CONTROLS, '_');
  const fallback = fileName.replace(/[^\x20-\x7e]|["\\%]/g, '_');
  const header = `${type}; filename="${fallback}"`;
  return fallback === fileName ? header : `${header}; filename*=UTF-8''${encode5987(fileName)}`;
}

/** The stored type when it is a plain `type/subtype`; anything odd is served as bytes. */
function servedType(mimeType: string | undefined): string {
  const type = (mimeType ?? '').toLowerCase().split(';')[0].trim();
  return /^[a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*$/.test(type) ? type : 'application/octet-stream';
}

export function setFileHeaders(res: Response, asset: { fileName: string; mimeType?: string }, size: number): void {
  const type = servedType(asset.mimeType);
  const inline = INLINE_TYPES.has(type);
  res.setHeader('Content-Type', inline ? type : 'application/octet-stream');
  res.setHeader('Content-Length', String(size));
  res.setHeader('Content-Disposition', contentDisposition(inline ? 'inline' : 'attachment', asset.fileName));
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Content-Security-Policy', FILE_CSP);
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
}
