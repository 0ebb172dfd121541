/**
 * Linear scales for the hand-drawn SVG charts: time (x of the timeline and the window
 * chart) and value (y of the window chart), with "nice" tick positions.
 */

export interface Scale {
  (value: number): number;
  domain: [number, number];
  range: [number, number];
  ticks(): number[];
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
// Tick spacings a reader recognises; the first giving at most `count` ticks wins.
const TIME_STEPS = [
  1, 2, 5, 10, 20, 50, 100, 200, 500,
  SECOND, 2 * SECOND, 5 * SECOND, 10 * SECOND, 15 * SECOND, 30 * SECOND,
  MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE,
  HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR,
  DAY, 2 * DAY, 7 * DAY, 14 * DAY, 30 * DAY, 91 * DAY, 365 * DAY
];

function linear(domain: [number, number], range: [number, number]): (v: number) => number {
  const [d0, d1] = domain;
  const [r0, r1] = range;
  const span = d1 - d0;
  return v => (span === 0 ? (r0 + r1) / 2 : r0 + ((v - d0) / span) * (r1 - r0));
}

/** Widen an empty domain (one moment, one value) so marks land mid-range. */
function widen(domain: [number, number], by: number): [number, number] {
  const [lo, hi] = domain;
  return lo === hi ? [lo - by, hi + by] : [lo, hi];
}

/** A time scale from epoch milliseconds to pixels; ticks on round time steps (UTC). */
export function timeScale(domain: [number, number], range: [number, number], count = 6): Scale {
  const d = widen(domain, SECOND);
  const f = linear(d, range) as Scale;
  f.domain = d;
  f.range = range;
  f.ticks = () => {
    const span = d[1] - d[0];
    const step = TIME_STEPS.find(st => span / st <= count) ?? Math.ceil(span / count / DAY) * DAY;
    const out: number[] = [];
    for (let t = Math.ceil(d[0] / step) * step; t <= d[1]; t += step) {
      out.push(t);
    }
    return out;
  };
  return f;
}

/** The tick step of a time scale's ticks (ms), for choosing a label format. */
export function tickStep(ticks: number[]): number {
  return ticks.length > 1 ? ticks[1] - ticks[0] : DAY;
}

/**
 * A short UTC label for a tick: seconds, minutes, hours or days, by step. Labels below a
 * day carry no date; `axisDates` says which day they belong to.
 */
export function formatTick(t: number, step: number): string {
  const iso = new Date(t).toISOString(); // 2026-01-01T12:00:00.000Z
  if (step < SECOND) {
    return iso.slice(11, 23);
  }
  if (step < MINUTE) {
    return iso.slice(11, 19);
  }
  if (step < DAY) {
    return iso.slice(11, 16);
  }
  return iso.slice(0, 10);
}

/**
 * The dates to write under a time axis whose tick labels are times of day: the first
 * tick's date, and the date of every tick on a new day, so "04:00 … 14:00" is never read
 * without its day (the axis used to show a date only when it crossed midnight). With no
 * tick, the date of `start`. Empty when the ticks are days already.
 */
export function axisDates(ticks: number[], step: number, start: number): { at: number; text: string }[] {
  if (step >= DAY) {
    return [];
  }
  const day = (t: number) => new Date(t).toISOString().slice(0, 10);
  if (ticks.length === 0) {
    return Number.isFinite(start) ? [{ at: start, text: day(start) }] : [];
  }
  const out: { at: number; text: string }[] = [];
  for (const t of ticks) {
    if (out.length === 0 || day(t) !== out[out.length - 1].text) {
      out.push({ at: t, text: day(t) });
    }
  }
  return out;
}

/** A value scale; the domain is stretched to round numbers (and to include 0). */
export function valueScale(domain: [number, number], range: [number, number], count = 5): Scale {
  let [lo, hi] = [Math.min(0, domain[0]), Math.max(0, domain[1])];
  if (lo === hi) {
    hi = lo + 1;
  }
  const raw = (hi - lo) / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map(m => m * mag).find(st => raw <= st) ?? 10 * mag;
  lo = Math.floor(lo / step) * step;
  hi = Math.ceil(hi / step) * step;
  const d: [number, number] = [lo, hi];
  const f = linear(d, range) as Scale;
  f.domain = d;
  f.range = range;
  f.ticks = () => {
    const out: number[] = [];
    for (let v = lo; v <= hi + step / 2; v += step) {
      out.push(Number(v.toPrecision(12)));
    }
    return out;
  };
  return f;
}
