'use strict';

// A dependency-free SVG chart: uploads/s against same-order concurrency, one
// line per implementation, one panel per collection size. Log scales, since
// the three differ by orders of magnitude.
const COLORS = { reference: '#d62728', addon: '#1f77b4', ceiling: '#7f7f7f' };
const W = 460;
const H = 320;
const PAD = { left: 64, right: 16, top: 36, bottom: 48 };

const log10 = (v) => Math.log10(Math.max(v, 0.1));

function panel(title, series, xs, yMax, offsetX) {
  const pw = W - PAD.left - PAD.right;
  const ph = H - PAD.top - PAD.bottom;
  const x = (c) => offsetX + PAD.left + (pw * (log10(c) - log10(xs[0]))) / (log10(xs[xs.length - 1]) - log10(xs[0]));
  const yTop = Math.ceil(log10(yMax));
  const y = (v) => PAD.top + ph - (ph * (log10(v) - 0)) / yTop;
  const out = [`<text x="${offsetX + W / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${title}</text>`];
  for (let e = 0; e <= yTop; e++) {
    const yy = y(10 ** e);
    out.push(`<line x1="${offsetX + PAD.left}" x2="${offsetX + W - PAD.right}" y1="${yy}" y2="${yy}" stroke="#eee"/>`);
    out.push(`<text x="${offsetX + PAD.left - 6}" y="${yy + 4}" text-anchor="end" font-size="11">${(10 ** e).toLocaleString('en-US')}</text>`);
  }
  for (const c of xs) {
    out.push(`<text x="${x(c)}" y="${H - PAD.bottom + 16}" text-anchor="middle" font-size="11">${c}</text>`);
  }
  out.push(`<text x="${offsetX + W / 2}" y="${H - 10}" text-anchor="middle" font-size="12">concurrent uploads to one order</text>`);
  for (const [name, points] of Object.entries(series)) {
    const pts = points.filter((p) => p.value > 0);
    out.push(`<polyline fill="none" stroke="${COLORS[name]}" stroke-width="2.5" points="${pts.map((p) => `${x(p.c).toFixed(1)},${y(p.value).toFixed(1)}`).join(' ')}"/>`);
    for (const p of pts) out.push(`<circle cx="${x(p.c).toFixed(1)}" cy="${y(p.value).toFixed(1)}" r="3.5" fill="${COLORS[name]}"/>`);
  }
  return out.join('\n');
}

/** panels: [{ title, series: { name: [{ c, value }] } }] */
function throughputChart(panels, caption) {
  const xs = [1, 10, 100, 1000];
  const yMax = Math.max(10, ...panels.flatMap((p) => Object.values(p.series).flat().map((pt) => pt.value)));
  const width = W * panels.length;
  const legend = Object.entries(COLORS)
    .map(([name, color], i) => `<rect x="${PAD.left + i * 130}" y="${H + 6}" width="14" height="4" fill="${color}"/><text x="${PAD.left + i * 130 + 20}" y="${H + 12}" font-size="12">${name}</text>`)
    .join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${H + 48}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="8" y="${H / 2}" font-size="12" transform="rotate(-90 12 ${H / 2})" text-anchor="middle">uploads/s (log)</text>
${panels.map((p, i) => panel(p.title, p.series, xs, yMax, i * W)).join('\n')}
${legend}
<text x="${PAD.left}" y="${H + 36}" font-size="11" fill="#555">${caption}</text>
</svg>
`;
}

module.exports = { throughputChart };
