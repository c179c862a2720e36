// NetSuite record shapes for the simulator: the salesOrder field rules and NetSuite's error body.
// Separate from netsuite.ts so the server module stays about transport and state.
import { STATUS_CODES } from 'node:http';
import { isDecimalString } from './decimal.ts';
import { isIsoDate, isPlainObject } from './http.ts';

export interface NsErrorDetail {
  detail: string;
  'o:errorPath'?: string;
  'o:errorCode': string;
}

const SECTION: Record<number, string> = {
  400: 'rfc9110.html#section-15.5.1',
  401: 'rfc9110.html#section-15.5.2',
  403: 'rfc9110.html#section-15.5.4',
  404: 'rfc9110.html#section-15.5.5',
  405: 'rfc9110.html#section-15.5.6',
  409: 'rfc9110.html#section-15.5.10',
  415: 'rfc9110.html#section-15.5.16',
  429: 'rfc6585.html#section-4',
  500: 'rfc9110.html#section-15.6.1',
  502: 'rfc9110.html#section-15.6.3',
  503: 'rfc9110.html#section-15.6.4',
  504: 'rfc9110.html#section-15.6.5',
};

export function netSuiteError(status: number, details: NsErrorDetail[]) {
  return {
    type: `https://www.rfc-editor.org/rfc/${SECTION[status] ?? 'rfc9110.html#section-15'}`,
    title: STATUS_CODES[status] ?? 'Error',
    status,
    'o:errorDetails': details,
  };
}

export const CURRENCIES = [
  { id: '1', refName: 'USD' },
  { id: '2', refName: 'GBP' },
  { id: '3', refName: 'CAD' },
  { id: '4', refName: 'EUR' },
];

const SO_FIELDS = new Set([
  'entity',
  'tranDate',
  'item',
  'currency',
  'memo',
  'otherRefNum',
  'externalId',
  'shippingCost',
  'discountTotal',
]);
const LINE_FIELDS = new Set(['item', 'quantity', 'rate', 'amount', 'description']);
const isRef = (v: unknown): v is { id: string } =>
  isPlainObject(v) && typeof v.id === 'string' && Object.keys(v).every((k) => k === 'id' || k === 'refName');

const isNumberOrDecimal = (v: unknown): v is number | string =>
  (typeof v === 'number' && Number.isFinite(v)) || isDecimalString(v);

export interface SalesOrderRefs {
  customers: ReadonlySet<string>;
  items: ReadonlyMap<string, string>;
}

export function unknownFields(body: Record<string, unknown>): NsErrorDetail[] {
  return Object.keys(body)
    .filter((k) => !SO_FIELDS.has(k) && !/^custbody_\w+$/.test(k))
    .map((k) => ({ detail: `Invalid field name: ${k}`, 'o:errorPath': k, 'o:errorCode': 'INVALID_FIELD' }));
}

/** Full-record validation (POST, PUT, and the merged result of a PATCH). */
export function validateSalesOrder(
  body: Record<string, unknown>,
  { customers, items }: SalesOrderRefs,
): NsErrorDetail[] {
  const out = unknownFields(body);
  const err = (path: string, code: string, detail: string) =>
    out.push({ detail, 'o:errorPath': path, 'o:errorCode': code });

  if (body.entity === undefined) err('entity', 'USER_ERROR', 'Please enter value(s) for: Customer.');
  else if (!isRef(body.entity)) {
    err(
      'entity',
      'INVALID_VALUE',
      'Invalid value for field entity: expected a reference {"id": "<internal id>"}.',
    );
  } else if (!customers.has(body.entity.id)) {
    err('entity', 'INVALID_KEY_OR_REF', `Invalid entity reference key ${body.entity.id}.`);
  }

  if (body.tranDate === undefined) err('tranDate', 'USER_ERROR', 'Please enter value(s) for: Date.');
  else if (!isIsoDate(body.tranDate)) {
    err(
      'tranDate',
      'INVALID_VALUE',
      `Invalid value for field tranDate: ${JSON.stringify(body.tranDate)}. Use YYYY-MM-DD.`,
    );
  }

  const item = body.item;
  if (item === undefined) err('item', 'USER_ERROR', 'Please enter value(s) for: Items.');
  else if (
    !isPlainObject(item) ||
    !Array.isArray(item.items) ||
    Object.keys(item).some((k) => k !== 'items')
  ) {
    err('item', 'INVALID_VALUE', 'Invalid value for field item: expected {"items": [...]}.');
  } else if (item.items.length === 0) {
    err('item.items', 'USER_ERROR', 'You must enter at least one line item for this transaction.');
  } else {
    for (const [i, line] of (item.items as unknown[]).entries()) {
      const at = `item.items[${i}]`;
      if (!isPlainObject(line)) {
        err(at, 'INVALID_VALUE', `Invalid value for ${at}: expected an object.`);
        continue;
      }
      for (const k of Object.keys(line)) {
        if (!LINE_FIELDS.has(k) && !/^custcol_\w+$/.test(k))
          err(`${at}.${k}`, 'INVALID_FIELD', `Invalid field name: ${k}`);
      }
      if (line.item === undefined) err(`${at}.item`, 'USER_ERROR', 'Please enter value(s) for: Item.');
      else if (!isRef(line.item)) {
        err(
          `${at}.item`,
          'INVALID_VALUE',
          'Invalid value for field item: expected a reference {"id": "<internal id>"}.',
        );
      } else if (!items.has(line.item.id)) {
        err(`${at}.item`, 'INVALID_KEY_OR_REF', `Invalid item reference key ${line.item.id}.`);
      }
      if (line.quantity === undefined)
        err(`${at}.quantity`, 'USER_ERROR', 'Please enter value(s) for: Quantity.');
      else if (typeof line.quantity !== 'number' || !Number.isFinite(line.quantity) || line.quantity <= 0) {
        err(
          `${at}.quantity`,
          'INVALID_VALUE',
          `Invalid value for field quantity: ${JSON.stringify(line.quantity)}.`,
        );
      }
      if (line.rate === undefined) err(`${at}.rate`, 'USER_ERROR', 'Please enter value(s) for: Rate.');
      else if (!isNumberOrDecimal(line.rate)) {
        err(`${at}.rate`, 'INVALID_VALUE', `Invalid value for field rate: ${JSON.stringify(line.rate)}.`);
      }
      if (line.amount !== undefined && !isNumberOrDecimal(line.amount)) {
        err(
          `${at}.amount`,
          'INVALID_VALUE',
          `Invalid value for field amount: ${JSON.stringify(line.amount)}.`,
        );
      }
      if (line.description !== undefined && typeof line.description !== 'string') {
        err(`${at}.description`, 'INVALID_VALUE', 'Invalid value for field description: expected a string.');
      }
    }
  }

  const currency = body.currency;
  if (currency !== undefined) {
    const keys = isPlainObject(currency) ? Object.keys(currency) : [];
    const ok =
      isPlainObject(currency) &&
      keys.length > 0 &&
      keys.every((k) => (k === 'id' || k === 'refName') && typeof currency[k] === 'string');
    if (!ok)
      err('currency', 'INVALID_VALUE', 'Invalid value for field currency: expected {"id"} or {"refName"}.');
    else {
      const c = currency as { id?: string; refName?: string };
      const known = CURRENCIES.find(
        (x) => (c.id === undefined || x.id === c.id) && (c.refName === undefined || x.refName === c.refName),
      );
      if (!known) {
        err('currency', 'INVALID_KEY_OR_REF', `Invalid currency reference key ${c.id ?? c.refName}.`);
      }
    }
  }
  for (const k of ['memo', 'otherRefNum']) {
    if (body[k] !== undefined && typeof body[k] !== 'string') {
      err(k, 'INVALID_VALUE', `Invalid value for field ${k}: expected a string.`);
    }
  }
  if (body.externalId !== undefined && (typeof body.externalId !== 'string' || body.externalId === '')) {
    err('externalId', 'INVALID_VALUE', 'Invalid value for field externalId: expected a non-empty string.');
  }
  if (
    body.shippingCost !== undefined &&
    (typeof body.shippingCost !== 'number' || !Number.isFinite(body.shippingCost) || body.shippingCost < 0)
  ) {
    err(
      'shippingCost',
      'INVALID_VALUE',
      `Invalid value for field shippingCost: ${JSON.stringify(body.shippingCost)}.`,
    );
  }
  if (
    body.discountTotal !== undefined &&
    (typeof body.discountTotal !== 'number' || !Number.isFinite(body.discountTotal))
  ) {
    err(
      'discountTotal',
      'INVALID_VALUE',
      `Invalid value for field discountTotal: ${JSON.stringify(body.discountTotal)}.`,
    );
  }
  for (const [k, v] of Object.entries(body)) {
    if (!k.startsWith('custbody_')) continue;
    const scalar = v === null || ['string', 'number', 'boolean'].includes(typeof v);
    if (!scalar && !isRef(v)) err(k, 'INVALID_VALUE', `Invalid value for custom field ${k}.`);
  }
  return out;
}
