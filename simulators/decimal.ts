// Exact decimal arithmetic on money strings (bigint units at a fixed scale): the simulators compare
// totals the way an accounting system does, so float drift in a client's mapping shows up as a mismatch.

/** `"12"`, `"12.5"`, `"-0.01"`; no exponent, no thousands separators, no leading `+`. */
export const DECIMAL_RE = /^-?\d+(?:\.\d+)?$/;

export function isDecimalString(v: unknown, maxScale = Number.POSITIVE_INFINITY): v is string {
  if (typeof v !== 'string' || !DECIMAL_RE.test(v)) return false;
  return (v.split('.')[1]?.length ?? 0) <= maxScale;
}

export interface Decimal {
  units: bigint;
  scale: number;
}

export function parseDecimal(s: string): Decimal {
  if (!DECIMAL_RE.test(s)) throw new Error(`not a decimal string: ${s}`);
  const negative = s.startsWith('-');
  const [int, frac = ''] = (negative ? s.slice(1) : s).split('.') as [string, string?];
  const units = BigInt(int + frac);
  return { units: negative ? -units : units, scale: frac.length };
}

function rescale(d: Decimal, scale: number): bigint {
  return d.units * 10n ** BigInt(scale - d.scale);
}

export function add(a: Decimal, b: Decimal): Decimal {
  const scale = Math.max(a.scale, b.scale);
  return { units: rescale(a, scale) + rescale(b, scale), scale };
}

export function mul(a: Decimal, b: Decimal): Decimal {
  return { units: a.units * b.units, scale: a.scale + b.scale };
}

/** Equal in value: "10.0" equals "10.00". */
export function eq(a: Decimal, b: Decimal): boolean {
  const scale = Math.max(a.scale, b.scale);
  return rescale(a, scale) === rescale(b, scale);
}

/** Rounds half away from zero to `scale` places. */
export function round(d: Decimal, scale: number): Decimal {
  if (d.scale <= scale) return { units: rescale(d, scale), scale };
  const div = 10n ** BigInt(d.scale - scale);
  const negative = d.units < 0n;
  const abs = negative ? -d.units : d.units;
  let q = abs / div;
  if ((abs % div) * 2n >= div) q += 1n;
  return { units: negative ? -q : q, scale };
}

export function format(d: Decimal): string {
  if (d.scale === 0) return d.units.toString();
  const negative = d.units < 0n;
  const digits = (negative ? -d.units : d.units).toString().padStart(d.scale + 1, '0');
  const int = digits.slice(0, -d.scale);
  const frac = digits.slice(-d.scale);
  return `${negative ? '-' : ''}${int}.${frac}`;
}

/** A JSON number or decimal string as a Decimal (numbers go through their shortest string form). */
export function toDecimal(v: number | string): Decimal {
  if (typeof v === 'string') return parseDecimal(v);
  const s = String(v);
  if (!/e/i.test(s)) return parseDecimal(s);
  return parseDecimal(v.toFixed(20).replace(/0+$/, '').replace(/\.$/, ''));
}

/** Sum of money values to 2 places, as a string: `money(["1.10", 2.2])` is `"3.30"`. */
export function money(values: (number | string | Decimal)[]): string {
  let total: Decimal = { units: 0n, scale: 2 };
  for (const v of values) total = add(total, typeof v === 'object' ? v : toDecimal(v));
  return format(round(total, 2));
}
