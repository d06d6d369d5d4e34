// Labelled series names (docs/protocol.md, "Labelled series"): the canonical
// text form `family{label="value",...}` the server keys `metrics_update`,
// `history` and `stats` on. Labels are sorted by name and values escaped as
// Prometheus escapes them (backslash, double quote, newline), so one series
// always has one string: the page can use it as a map key and rebuild it
// from its parts. Mirrors src/dashd/collect/series_names.py.

export interface SeriesName {
  family: string;
  labels: Readonly<Record<string, string>>;
}

const FAMILY = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '"': '\\"', '\n': '\\n' };
const UNESCAPES: Record<string, string> = { '\\': '\\', '"': '"', n: '\n' };

export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (ch) => ESCAPES[ch]);
}

/** The canonical text of a series: labels sorted by name, values escaped. */
export function formatSeriesName(family: string, labels: Readonly<Record<string, string>> = {}): string {
  const keys = Object.keys(labels).sort();
  if (!keys.length) return family;
  return `${family}{${keys.map((k) => `${k}="${escapeLabelValue(labels[k])}"`).join(',')}}`;
}

/** Read one double-quoted value starting at `pos` (the quote); returns the value and the index after it. */
function readQuoted(text: string, pos: number, end: number): [string, number] | null {
  if (text[pos] !== '"') return null;
  let out = '';
  for (let i = pos + 1; i < end; i += 1) {
    const ch = text[i];
    if (ch === '"') return [out, i + 1];
    if (ch === '\\') {
      const next = UNESCAPES[text[i + 1]];
      if (next === undefined || i + 1 >= end) return null;
      out += next;
      i += 1;
    } else {
      out += ch;
    }
  }
  return null;
}

/**
 * Parse a series name (`family` or `family{a="x",b="y"}`), or null for
 * anything that is not one: the page shows unknown names as they are rather
 * than guess at them. Label order on the wire is not trusted; the result's
 * labels are a plain object.
 */
export function parseSeriesName(text: string): SeriesName | null {
  if (typeof text !== 'string' || !text) return null;
  const brace = text.indexOf('{');
  const family = brace < 0 ? text : text.slice(0, brace);
  if (!FAMILY.test(family)) return null;
  if (brace < 0) return { family, labels: {} };
  if (!text.endsWith('}')) return null;
  const end = text.length - 1;
  const labels: Record<string, string> = {};
  let pos = brace + 1;
  while (pos < end) {
    const eq = text.indexOf('=', pos);
    if (eq < 0 || eq >= end) return null;
    const name = text.slice(pos, eq).trim();
    if (!LABEL.test(name) || Object.prototype.hasOwnProperty.call(labels, name)) return null;
    const quoted = readQuoted(text, eq + 1, end);
    if (!quoted) return null;
    labels[name] = quoted[0];
    pos = quoted[1];
    if (pos < end) {
      if (text[pos] !== ',') return null;
      pos += 1;
    }
  }
  return { family, labels };
}

/** parseSeriesName with a bounded memo: the same few hundred names arrive every second. */
export function createSeriesNameCache(maxEntries = 20_000): (text: string) => SeriesName | null {
  const cache = new Map<string, SeriesName | null>();
  return (text) => {
    const hit = cache.get(text);
    if (hit !== undefined || cache.has(text)) return hit ?? null;
    if (cache.size >= maxEntries) cache.clear();
    const parsed = parseSeriesName(text);
    cache.set(text, parsed);
    return parsed;
  };
}
