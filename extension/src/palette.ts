/**
 * Colors for categories (event types, window keys).
 *
 * A fixed categorical palette chosen to read on both the light and the dark theme (mid
 * lightness, distinct hues); past its end, hues are spread around the wheel. Categories
 * are given colors in sorted order, so a type keeps its color between pages of events.
 */

const PALETTE = [
  '#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#b07aa1',
  '#76b7b2', '#edc948', '#ff9da7', '#9c755f', '#8cd17d'
];

/** The color of each name, by its rank among the sorted distinct names. */
export function colorsFor(names: Iterable<string>): Map<string, string> {
  const sorted = [...new Set(names)].sort();
  const colors = new Map<string, string>();
  sorted.forEach((name, i) => {
    colors.set(
      name,
      i < PALETTE.length ? PALETTE[i] : `hsl(${Math.round((i * 137.508) % 360)}, 55%, 55%)`
    );
  });
  return colors;
}
