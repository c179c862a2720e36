// The functions a mapping expression can call besides JSONata's own: $lookup for lookup tables, the
// $money family for exact money, and the cross-reference functions of ../xref/context.ts. JSONata numbers are binary floats, so money is built from the source
// text (or the shortest float text) and computed in bigint minor units; nothing is ever rounded silently.
//
// Like JSONata's own functions these return undefined when a value they need is undefined (a field the
// payload lacks), so a missing field surfaces as a missing canonical field with its path, not as a
// wrong number. Bad values (not an amount, mixed currencies, too many decimals) throw.
import {
  DECIMAL_AMOUNT,
  fromMinorUnits,
  type Money,
  minorDigits,
  toMinorUnits,
} from '../../api/canonical/money.ts';
import { xrefFunctions } from '../xref/context.ts';
import { xmlEscape } from './encode.ts';
import { MappingEvaluationError } from './errors.ts';
import { isJsonataFunction } from './json.ts';
import type { MappingDefinition } from './types.ts';

export type LookupTables = MappingDefinition['lookups'];

/** A function to register on a JSONata expression; signatures are JSONata's type syntax. */
export interface MappingFunction {
  name: string;
  implementation: (...args: never[]) => unknown;
  signature?: string;
}

/** Every custom function, bound to one mapping's lookup tables. */
export function mappingFunctions(lookups: LookupTables): MappingFunction[] {
  return [
    { name: 'lookup', implementation: createLookup(lookups) },
    { name: 'money', implementation: money },
    { name: 'moneyAdd', implementation: moneyAdd },
    { name: 'moneySub', implementation: moneySub },
    { name: 'moneyMul', implementation: moneyMul },
    { name: 'moneySum', implementation: moneySum },
    { name: 'xmlEscape', implementation: xmlEscape },
    ...xrefFunctions(),
  ];
}

/**
 * `$lookup(table, key)`: the table's value for key, else the table's default, else an error naming the
 * table and key. Numbers and booleans are looked up by their text (ERP status codes are often numbers).
 */
export function createLookup(lookups: LookupTables): (table: unknown, key: unknown) => string | undefined {
  return (table, key) => {
    if (typeof table !== 'string') {
      throw fail(
        '$lookup',
        `the first argument must be the name of a table in spec.lookups, in quotes, got ${describe(table)} (in a mapping $lookup reads lookup tables; read a field of an object with a path such as obj.field)`,
      );
    }
    const t = Object.hasOwn(lookups, table) ? lookups[table] : undefined;
    if (t === undefined) {
      const known = Object.keys(lookups);
      throw fail(
        '$lookup',
        `no lookup table named "${table}"; ${known.length ? `spec.lookups has ${known.map((k) => `"${k}"`).join(', ')}` : 'spec.lookups is empty'}`,
      );
    }
    if (key === undefined) return undefined;
    if (typeof key !== 'string' && typeof key !== 'number' && typeof key !== 'boolean') {
      throw fail('$lookup', `the key must be a string, got ${describe(key)}`);
    }
    const k = String(key);
    if (Object.hasOwn(t.values, k)) return t.values[k];
    if (t.default !== undefined) return t.default;
    throw fail(
      '$lookup',
      `table "${table}" has no key ${JSON.stringify(k)} and no default; add the key to the table or give the table a default`,
    );
  };
}

/**
 * `$money(amount, currency)`: {amount, currency} with exactly the currency's minor digits
 * ("4" -> "4.00", JPY 1500 -> "1500"). Amounts with more decimals than the currency has are rejected.
 */
export function money(amount: unknown, currency: unknown): Money | undefined {
  if (amount === undefined) return undefined;
  const cur = checkCurrency('$money', currency);
  const text = amountText('$money', amount);
  return {
    amount:
      normalizeAmount(text, minorDigits(cur)) ??
      fromMinorUnits(minor('$money', { amount: text, currency: cur }), cur).amount,
    currency: cur,
  };
}

const PLAIN_DECIMAL = /^(-?)([0-9]+)(?:\.([0-9]+))?$/;

/**
 * The hot path of $money: a plain decimal with no more decimals than the currency allows becomes
 * its canonical text by padding alone (what fromMinorUnits(toMinorUnits(x)) gives, without BigInt).
 * Anything else returns undefined and takes the exact BigInt path, which also reports errors.
 */
function normalizeAmount(text: string, digits: number): string | undefined {
  const m = PLAIN_DECIMAL.exec(text);
  if (!m) return undefined;
  let end = m[3]?.length ?? 0;
  while (end > 0 && m[3]!.charCodeAt(end - 1) === 48) end--;
  if (end > digits) return undefined;
  const frac = (m[3] ?? '').slice(0, end);
  let start = 0;
  const whole = m[2]!;
  while (start < whole.length - 1 && whole.charCodeAt(start) === 48) start++;
  const w = whole.slice(start);
  const zero = w === '0' && end === 0;
  return `${m[1] && !zero ? '-' : ''}${w}${digits > 0 ? `.${frac.padEnd(digits, '0')}` : ''}`;
}

/** `$moneyAdd(a, b, ...)`: the exact sum of two or more amounts in one currency. */
export function moneyAdd(...amounts: unknown[]): Money | undefined {
  if (amounts.length === 0) throw fail('$moneyAdd', 'needs at least one amount');
  if (amounts.some((a) => a === undefined)) return undefined;
  const ms = amounts.map((a, i) => checkMoney('$moneyAdd', a, i + 1));
  const currency = sameCurrency('$moneyAdd', ms);
  return fromMinorUnits(
    ms.reduce((sum, m) => sum + minor('$moneyAdd', m), 0n),
    currency,
  );
}

/** `$moneySub(a, b)`: a - b, exactly; both in one currency. */
export function moneySub(a: unknown, b: unknown): Money | undefined {
  if (a === undefined || b === undefined) return undefined;
  const ms = [checkMoney('$moneySub', a, 1), checkMoney('$moneySub', b, 2)] as const;
  const currency = sameCurrency('$moneySub', ms);
  return fromMinorUnits(minor('$moneySub', ms[0]) - minor('$moneySub', ms[1]), currency);
}

/** `$moneyMul(money, quantity)`: money times a whole number, exactly. */
export function moneyMul(m: unknown, quantity: unknown): Money | undefined {
  if (m === undefined || quantity === undefined) return undefined;
  const checked = checkMoney('$moneyMul', m, 1);
  let q: bigint;
  if (typeof quantity === 'number' && Number.isSafeInteger(quantity)) q = BigInt(quantity);
  else if (typeof quantity === 'string' && /^-?[0-9]+$/.test(quantity.trim())) q = BigInt(quantity.trim());
  else {
    throw fail(
      '$moneyMul',
      `the quantity must be a whole number, got ${describe(quantity)}; multiplying money by a fraction needs a rounding rule, so compute that amount in the source or round it explicitly`,
    );
  }
  return fromMinorUnits(minor('$moneyMul', checked) * q, checked.currency);
}

/**
 * `$moneySum(list, currency?)`: the exact sum of a list of money. An empty (or missing) list needs the
 * currency to produce a zero; when given, every item must be in that currency.
 */
export function moneySum(list: unknown, currency?: unknown): Money {
  // A JSONata path that selects one item yields the item itself, not a one-element array.
  const items = list === undefined ? [] : Array.isArray(list) ? list : [list];
  const ms = items.map((m, i) => checkMoney('$moneySum', m, 1, i));
  let cur: string;
  if (currency !== undefined) cur = checkCurrency('$moneySum', currency);
  else if (ms[0] !== undefined) cur = ms[0].currency;
  else {
    throw fail(
      '$moneySum',
      'the list is empty, so the currency of the zero is unknown; pass it: $moneySum(list, "USD")',
    );
  }
  sameCurrency('$moneySum', ms, cur);
  return fromMinorUnits(
    ms.reduce((sum, m) => sum + minor('$moneySum', m), 0n),
    cur,
  );
}

function fail(fn: string, problem: string, cause?: unknown): MappingEvaluationError {
  return new MappingEvaluationError(`${fn}: ${problem}`, { cause });
}

function checkCurrency(fn: string, currency: unknown): string {
  if (typeof currency === 'string' && /^[A-Z]{3}$/.test(currency)) return currency;
  throw fail(fn, `the currency must be an ISO 4217 code such as "USD", got ${describe(currency)}`);
}

/** The decimal text of an amount given as a string ("19.99", " +4 ") or a number (19.99, 1e21). */
function amountText(fn: string, amount: unknown): string {
  if (typeof amount === 'number') {
    if (!Number.isFinite(amount)) throw fail(fn, `the amount must be a finite number, got ${amount}`);
    return expandExponent(String(amount));
  }
  if (typeof amount === 'string') {
    const text = amount.trim().replace(/^\+/, '');
    if (DECIMAL_AMOUNT.test(text)) return text;
  }
  throw fail(fn, `the amount must be a decimal number or string such as "19.99", got ${describe(amount)}`);
}

/** JavaScript writes very large and very small numbers with an exponent: 1e+21, 1.5e-7. */
function expandExponent(text: string): string {
  const m = /^(-?)(\d+)(?:\.(\d+))?e([+-]\d+)$/.exec(text);
  if (!m) return text;
  const [, sign = '', whole = '', frac = '', exp = '0'] = m;
  const digits = whole + frac;
  const point = whole.length + Number(exp);
  if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`;
  if (point >= digits.length) return `${sign}${digits}${'0'.repeat(point - digits.length)}`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

function checkMoney(fn: string, value: unknown, argument: number, index?: number): Money {
  if (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    typeof (value as Money).amount === 'string' &&
    DECIMAL_AMOUNT.test((value as Money).amount) &&
    typeof (value as Money).currency === 'string' &&
    /^[A-Z]{3}$/.test((value as Money).currency)
  ) {
    return value as Money;
  }
  const where = index === undefined ? `argument ${argument}` : `item ${index} of the list`;
  throw fail(
    fn,
    `${where} must be money {"amount": "19.99", "currency": "USD"}, got ${describe(value)}; build it with $money(amount, currency)`,
  );
}

function sameCurrency(fn: string, ms: readonly Money[], expected?: string): string {
  const currency = expected ?? ms[0]?.currency ?? '';
  const other = ms.find((m) => m.currency !== currency);
  if (other) {
    throw fail(
      fn,
      `cannot combine ${currency} and ${other.currency}; amounts in different currencies must be converted first`,
    );
  }
  return currency;
}

function minor(fn: string, m: Money): bigint {
  try {
    return toMinorUnits(m);
  } catch (err) {
    const digits = minorDigits(m.currency);
    throw fail(
      fn,
      `${m.amount} ${m.currency} has more than ${digits} decimal ${digits === 1 ? 'place' : 'places'}; round it explicitly in the expression (e.g. $round(x, ${digits})) if that is intended`,
      err,
    );
  }
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing (undefined)';
  if (isJsonataFunction(value)) return 'a function';
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
