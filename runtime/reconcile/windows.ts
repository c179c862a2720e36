// Business-day windows: an event belongs to the business day whose cutoff (local time in the
// policy's time zone) it falls before — by its business time, never its arrival time. Pure.
import { durationMs } from '../../api/common.ts';

export interface WindowSpec {
  timeZone: string;
  /** "HH:MM": the local time the business day ends. "00:00" means midnight at the end of the day. */
  cutoff: string;
  lateness: string;
}

const partsFormatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = partsFormatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    partsFormatters.set(timeZone, f);
  }
  return f;
}

interface LocalParts {
  year: number;
  month: number;
  day: number;
  minutes: number;
  seconds: number;
}

function localParts(epochMs: number, timeZone: string): LocalParts {
  const p: Record<string, number> = {};
  for (const part of formatter(timeZone).formatToParts(new Date(epochMs))) {
    if (part.type !== 'literal') p[part.type] = Number(part.value);
  }
  return {
    year: p.year!,
    month: p.month!,
    day: p.day!,
    minutes: p.hour! * 60 + p.minute!,
    seconds: p.second!,
  };
}

function cutoffMinutes(cutoff: string): number {
  const [h, m] = cutoff.split(':').map(Number) as [number, number];
  const minutes = h * 60 + m;
  return minutes === 0 ? 24 * 60 : minutes;
}

const pad = (n: number) => String(n).padStart(2, '0');
const isoDate = (y: number, m: number, d: number) => {
  const t = new Date(Date.UTC(y, m - 1, d));
  return `${t.getUTCFullYear()}-${pad(t.getUTCMonth() + 1)}-${pad(t.getUTCDate())}`;
};

/** The business day ("YYYY-MM-DD") an instant belongs to. */
export function windowOf(epochMs: number, spec: Pick<WindowSpec, 'timeZone' | 'cutoff'>): string {
  const l = localParts(epochMs, spec.timeZone);
  const c = cutoffMinutes(spec.cutoff);
  // Midnight exactly is the end (24:00) of the day before, when that is the cutoff.
  if (c === 24 * 60 && l.minutes === 0 && l.seconds === 0) return isoDate(l.year, l.month, l.day - 1);
  // At or before the cutoff minute (to the second) the day is still open.
  const before = l.minutes < c || (l.minutes === c && l.seconds === 0);
  return before ? isoDate(l.year, l.month, l.day) : isoDate(l.year, l.month, l.day + 1);
}

/** The UTC instant of a local wall-clock time in a zone (DST-aware: two passes settle the offset). */
function zonedToUtc(y: number, m: number, d: number, minutes: number, timeZone: string): number {
  const wall = Date.UTC(y, m - 1, d, 0, minutes);
  let guess = wall;
  for (let i = 0; i < 2; i++) {
    const l = localParts(guess, timeZone);
    const shown = Date.UTC(l.year, l.month - 1, l.day, 0, l.minutes, l.seconds);
    guess += wall - shown;
  }
  return guess;
}

export interface WindowBounds {
  window: string;
  /** Exclusive start, inclusive end (epoch ms). */
  startMs: number;
  endMs: number;
  /** When the window becomes final: end + lateness. */
  finalAtMs: number;
}

export function windowBounds(window: string, spec: WindowSpec): WindowBounds {
  const [y, m, d] = window.split('-').map(Number) as [number, number, number];
  const c = cutoffMinutes(spec.cutoff);
  const endMs = zonedToUtc(y, m, d, c, spec.timeZone);
  const startMs = zonedToUtc(y, m, d - 1, c, spec.timeZone);
  return { window, startMs, endMs, finalAtMs: endMs + durationMs(spec.lateness) };
}

export function isFinal(window: string, spec: WindowSpec, nowMs: number): boolean {
  return nowMs >= windowBounds(window, spec).finalAtMs;
}
