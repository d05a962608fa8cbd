// Small SVG charts as strings: a donut, a stacked rate bar, horizontal bars and a heat map.
// Plain functions of their numbers, no state, no library.

const fmt = new Intl.NumberFormat("en-US");
const esc = (text) => String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

export const COLORS = {
  matched: "#1f9d74",
  // invalid_format, no_recipient, ambiguous, duplicate, then any other reason.
  reasons: ["#e05d44", "#f0a431", "#8e6bd8", "#5b8def", "#9aa4b2", "#c77dba", "#6cc3d5"],
};

/** A donut of `slices` ({label, value, color}) with a figure in the middle and a legend. */
export function donut(slices, center, caption) {
  const total = slices.reduce((n, s) => n + s.value, 0) || 1;
  const r = 60;
  const c = 2 * Math.PI * r;
  let offset = 0;
  const arcs = slices
    .filter((s) => s.value > 0)
    .map((s) => {
      const length = (s.value / total) * c;
      const arc = `<circle r="${r}" cx="80" cy="80" fill="none" stroke="${s.color}" stroke-width="22" stroke-dasharray="${length} ${c - length}" stroke-dashoffset="${-offset}"><title>${esc(s.label)}: ${fmt.format(s.value)}</title></circle>`;
      offset += length;
      return arc;
    })
    .join("");
  const legend = slices
    .map((s) => `<li><span class="swatch" style="background:${s.color}"></span>${esc(s.label)}<b>${fmt.format(s.value)}</b><span class="muted">${((s.value / total) * 100).toFixed(1)}%</span></li>`)
    .join("");
  return `<svg viewBox="0 0 160 160" class="donut-svg" role="img" aria-label="outcomes"><g transform="rotate(-90 80 80)"><circle r="${r}" cx="80" cy="80" fill="none" stroke="#eef1f5" stroke-width="22"/>${arcs}</g>
    <text x="80" y="80" text-anchor="middle" class="donut-value">${esc(center)}</text><text x="80" y="100" text-anchor="middle" class="donut-caption">${esc(caption)}</text></svg><ul class="legend">${legend}</ul>`;
}

/** A thin stacked bar of `parts` ({value, color, label}). */
export function rateBar(parts) {
  const total = parts.reduce((n, p) => n + p.value, 0) || 1;
  let x = 0;
  const rects = parts
    .filter((p) => p.value > 0)
    .map((p) => {
      const w = (p.value / total) * 100;
      const rect = `<rect x="${x}" y="0" width="${w}" height="8" fill="${p.color}"><title>${esc(p.label)}: ${fmt.format(p.value)}</title></rect>`;
      x += w;
      return rect;
    })
    .join("");
  return `<svg class="ratebar" viewBox="0 0 100 8" preserveAspectRatio="none"><rect width="100" height="8" fill="#eef1f5"/>${rects}</svg>`;
}

/** Horizontal bars: `items` ({label, value, muted}) as shares of `total`. */
export function hbars(items, total, testid = "bars") {
  const max = Math.max(1, ...items.map((i) => i.value));
  return `<div class="hbars" data-testid="${testid}">${items
    .map(
      (i) => `<div class="hbar ${i.muted ? "muted" : ""}" data-label="${esc(i.label)}" data-value="${i.value}"><span class="hbar-label">${esc(i.label)}</span>
      <span class="hbar-track"><span class="hbar-fill" style="width:${((i.value / max) * 100).toFixed(2)}%"></span></span>
      <span class="hbar-value">${fmt.format(i.value)} <span class="muted">${total ? ((i.value / total) * 100).toFixed(1) + "%" : ""}</span></span></div>`,
    )
    .join("")}</div>`;
}

/**
 * A heat map of `overlap` ({lists, matrix}): cell (i, j) is the number of recipients in both
 * lists, shaded by its share of the smaller list. Only the `limit` largest lists are drawn.
 */
export function heatmap(overlap, limit) {
  const n = overlap.lists.length;
  if (n === 0) return '<p class="muted">no list has members</p>';
  const order = [...Array(n).keys()].sort((a, b) => overlap.matrix[b][b] - overlap.matrix[a][a]).slice(0, limit);
  const size = 26;
  let maxShare = 0;
  for (const i of order) {
    for (const j of order) {
      if (i !== j) maxShare = Math.max(maxShare, overlap.matrix[i][j] / (Math.min(overlap.matrix[i][i], overlap.matrix[j][j]) || 1));
    }
  }
  const labelW = 60;
  const top = 56;
  const cells = [];
  order.forEach((i, row) => {
    order.forEach((j, col) => {
      const both = overlap.matrix[i][j];
      const smaller = Math.min(overlap.matrix[i][i], overlap.matrix[j][j]) || 1;
      const share = i === j ? 1 : both / smaller;
      const fill = i === j ? "#2d3a4b" : `rgba(31,157,116,${(0.08 + 0.92 * (maxShare ? share / maxShare : 0)).toFixed(3)})`;
      cells.push(
        `<rect x="${labelW + col * size}" y="${top + row * size}" width="${size - 2}" height="${size - 2}" rx="3" fill="${fill}" data-a="${esc(overlap.lists[i])}" data-b="${esc(overlap.lists[j])}" data-both="${both}"><title>${esc(overlap.lists[i])} ∩ ${esc(overlap.lists[j])}: ${fmt.format(both)} recipients (${(share * 100).toFixed(1)}% of the smaller)</title></rect>`,
      );
    });
  });
  const labels = order
    .map((i, k) => {
      const name = overlap.lists[i].replace(/^segment-/, "");
      return `<text x="${labelW - 6}" y="${top + k * size + size / 2 + 3}" text-anchor="end" class="hm-label">${esc(name)}</text>
        <text transform="translate(${labelW + k * size + size / 2 + 3} ${top - 6}) rotate(-60)" class="hm-label">${esc(name)}</text>`;
    })
    .join("");
  const w = labelW + order.length * size + 10;
  const h = top + order.length * size + 10;
  const note = `<div class="hm-legend"><span>0%</span><span class="hm-scale"></span><span>${(maxShare * 100).toFixed(1)}% of the smaller list in both</span>${(overlap.total ?? n) > order.length ? `<span>· the ${order.length} largest of ${overlap.total ?? n} lists</span>` : ""}</div>`;
  return `<svg viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" class="heatmap-svg">${labels}${cells.join("")}</svg>${note}`;
}
