// The converge chart as a self-contained SVG: time against N (log scale) for the operator and the
// baseline.

export interface ConvergePoint {
  namespaces: number;
  operator_s: number;
  baseline_s: number;
}

const width = 640;
const height = 400;
const margin = { left: 70, right: 30, top: 50, bottom: 60 };
const colors = { operator: "#1f77b4", baseline: "#ff7f0e" };

function escapeXml(text: string): string {
  return text.replace(/[<>&"]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;" })[c] ?? c);
}

/** Round steps (1, 2, 5 × 10^k) that cover [0, max] in about five ticks. */
function yTicks(max: number): number[] {
  const raw = max / 5;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? raw;
  const ticks: number[] = [];
  for (let value = 0; value <= max + step / 2 && ticks.length < 20; value += step) ticks.push(value);
  return ticks;
}

function label(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(value < 1 ? 2 : 1);
}

export function convergeChartSvg(points: readonly ConvergePoint[]): string {
  const sorted = [...points].sort((a, b) => a.namespaces - b.namespaces);
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const ns = sorted.map((p) => p.namespaces);
  const minLog = Math.log10(Math.min(...ns));
  const maxLog = Math.log10(Math.max(...ns));
  const span = maxLog - minLog || 1;
  const x = (n: number): number =>
    sorted.length === 1 ? margin.left + plotW / 2 : margin.left + ((Math.log10(n) - minLog) / span) * plotW;
  const ticks = yTicks(Math.max(...sorted.flatMap((p) => [p.operator_s, p.baseline_s]), 0.1));
  const yMax = ticks[ticks.length - 1] ?? 1;
  const y = (s: number): number => margin.top + plotH - (s / yMax) * plotH;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="15">Cold converge: time until every namespace is synced</text>`,
  ];
  for (const tick of ticks) {
    const ty = y(tick).toFixed(1);
    parts.push(
      `<line x1="${margin.left}" y1="${ty}" x2="${width - margin.right}" y2="${ty}" stroke="#e0e0e0"/>`,
      `<text x="${margin.left - 8}" y="${ty}" text-anchor="end" dominant-baseline="middle">${label(tick)}</text>`,
    );
  }
  for (const n of ns) {
    const tx = x(n).toFixed(1);
    parts.push(
      `<line x1="${tx}" y1="${margin.top + plotH}" x2="${tx}" y2="${margin.top + plotH + 5}" stroke="black"/>`,
      `<text x="${tx}" y="${margin.top + plotH + 20}" text-anchor="middle">${n}</text>`,
    );
  }
  parts.push(
    `<line x1="${margin.left}" y1="${margin.top}" x2="${margin.left}" y2="${margin.top + plotH}" stroke="black"/>`,
    `<line x1="${margin.left}" y1="${margin.top + plotH}" x2="${width - margin.right}" y2="${margin.top + plotH}" stroke="black"/>`,
    `<text x="${margin.left + plotW / 2}" y="${height - 15}" text-anchor="middle">target namespaces N (log scale)</text>`,
    `<text transform="translate(20 ${margin.top + plotH / 2}) rotate(-90)" text-anchor="middle">seconds</text>`,
  );
  const series = [
    { name: "operator", color: colors.operator, value: (p: ConvergePoint) => p.operator_s },
    { name: "baseline (minimal client)", color: colors.baseline, value: (p: ConvergePoint) => p.baseline_s },
  ];
  series.forEach((s, i) => {
    const coords = sorted.map((p) => `${x(p.namespaces).toFixed(1)},${y(s.value(p)).toFixed(1)}`);
    parts.push(`<polyline points="${coords.join(" ")}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
    for (const p of sorted) {
      const cx = x(p.namespaces).toFixed(1);
      const cy = y(s.value(p)).toFixed(1);
      parts.push(
        `<circle cx="${cx}" cy="${cy}" r="4" fill="${s.color}"><title>${escapeXml(`${s.name}: ${p.namespaces} namespaces in ${s.value(p)} s`)}</title></circle>`,
      );
    }
    const ly = margin.top + 10 + i * 18;
    parts.push(
      `<line x1="${margin.left + 12}" y1="${ly}" x2="${margin.left + 36}" y2="${ly}" stroke="${s.color}" stroke-width="2"/>`,
      `<text x="${margin.left + 42}" y="${ly}" dominant-baseline="middle">${escapeXml(s.name)}</text>`,
    );
  });
  parts.push("</svg>");
  return `${parts.join("\n")}\n`;
}
