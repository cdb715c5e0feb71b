'use strict';

// A dependency-free SVG chart: uploads/s against same-order concurrency, one
// line per implementation and one panel per collection size, then a panel of
// bars for the many-orders workloads. Log scales, one for every panel, since
// the implementations differ by orders of magnitude.
const COLORS = { reference: '#d62728', addon: '#1f77b4', insertOne: '#7f7f7f', bulk: '#2ca02c' };
const W = 460;
const H = 320;
const PAD = { left: 64, right: 16, top: 36, bottom: 48 };
const PH = H - PAD.top - PAD.bottom;

const log10 = (v) => Math.log10(Math.max(v, 0.1));

/** The y axis (uploads/s, log, from 1 to yTop decades) and the panel's title. */
function frame(title, yTop, offsetX) {
  const y = (v) => PAD.top + PH - (PH * log10(Math.max(v, 1))) / yTop;
  const out = [`<text x="${offsetX + W / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${title}</text>`];
  for (let e = 0; e <= yTop; e++) {
    const yy = y(10 ** e);
    out.push(`<line x1="${offsetX + PAD.left}" x2="${offsetX + W - PAD.right}" y1="${yy}" y2="${yy}" stroke="#eee"/>`);
    out.push(`<text x="${offsetX + PAD.left - 6}" y="${yy + 4}" text-anchor="end" font-size="11">${(10 ** e).toLocaleString('en-US')}</text>`);
  }
  return { y, out };
}

function linePanel(title, series, xs, yTop, offsetX) {
  const pw = W - PAD.left - PAD.right;
  const x = (c) => offsetX + PAD.left + (pw * (log10(c) - log10(xs[0]))) / (log10(xs[xs.length - 1]) - log10(xs[0]));
  const { y, out } = frame(title, yTop, offsetX);
  for (const c of xs) {
    out.push(`<text x="${x(c)}" y="${H - PAD.bottom + 16}" text-anchor="middle" font-size="11">${c}</text>`);
  }
  out.push(`<text x="${offsetX + W / 2}" y="${H - 10}" text-anchor="middle" font-size="12">concurrent uploads to one order</text>`);
  for (const [name, points] of Object.entries(series)) {
    // A run that stored nothing (the reference, cut off) has no point.
    const pts = points.filter((p) => p.value > 0);
    out.push(`<polyline fill="none" stroke="${COLORS[name]}" stroke-width="2.5" points="${pts.map((p) => `${x(p.c).toFixed(1)},${y(p.value).toFixed(1)}`).join(' ')}"/>`);
    for (const p of pts) out.push(`<circle cx="${x(p.c).toFixed(1)}" cy="${y(p.value).toFixed(1)}" r="3.5" fill="${COLORS[name]}"/>`);
  }
  return out.join('\n');
}

/** groups: [{ label: [line, …], values: { impl: uploads/s } }] */
function barPanel(title, groups, yTop, offsetX) {
  const { y, out } = frame(title, yTop, offsetX);
  const names = Object.keys(COLORS);
  const gw = (W - PAD.left - PAD.right) / groups.length;
  const bw = (gw * 0.8) / names.length;
  groups.forEach((g, gi) => {
    const gx = offsetX + PAD.left + gi * gw + gw * 0.1;
    names.forEach((name, ni) => {
      const v = g.values[name] || 0;
      const top = y(v);
      out.push(`<rect x="${(gx + ni * bw).toFixed(1)}" y="${top.toFixed(1)}" width="${(bw - 1).toFixed(1)}" height="${(PAD.top + PH - top).toFixed(1)}" fill="${COLORS[name]}"/>`);
    });
    g.label.forEach((line, li) => {
      out.push(`<text x="${(gx + gw * 0.4).toFixed(1)}" y="${H - PAD.bottom + 16 + li * 13}" text-anchor="middle" font-size="11">${line}</text>`);
    });
  });
  return out.join('\n');
}

/**
 * lines: [{ title, series: { impl: [{ c, value }] } }], one panel each;
 * bars: { title, groups } (see barPanel), one more panel.
 */
function throughputChart(lines, bars, caption) {
  const xs = [1, 10, 100, 1000];
  const values = [
    ...lines.flatMap((p) =>
      Object.values(p.series)
        .flat()
        .map((pt) => pt.value),
    ),
    ...bars.groups.flatMap((g) => Object.values(g.values)),
  ];
  const yTop = Math.ceil(log10(Math.max(10, ...values)));
  const width = W * (lines.length + 1);
  const legend = Object.entries(COLORS)
    .map(
      ([name, color], i) =>
        `<rect x="${PAD.left + i * 130}" y="${H + 6}" width="14" height="4" fill="${color}"/><text x="${PAD.left + i * 130 + 20}" y="${H + 12}" font-size="12">${name}</text>`,
    )
    .join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${H + 48}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="8" y="${H / 2}" font-size="12" transform="rotate(-90 12 ${H / 2})" text-anchor="middle">uploads/s (log)</text>
${lines.map((p, i) => linePanel(p.title, p.series, xs, yTop, i * W)).join('\n')}
${barPanel(bars.title, bars.groups, yTop, lines.length * W)}
${legend}
<text x="${PAD.left}" y="${H + 36}" font-size="11" fill="#555">${caption}</text>
</svg>
`;
}

module.exports = { throughputChart };
