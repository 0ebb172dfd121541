/**
 * Stacking the marks of one timeline lane so that marks close in time do not cover
 * each other: an order placed, corrected and paid within minutes lands on nearly the
 * same x, and drawn on one line only the topmost circle could be hovered or clicked.
 *
 * Marks keep their x (their time); a mark that would overlap the previous one moves to
 * the next free row of the lane, and the lane grows to hold its rows. Moving marks
 * sideways instead was rejected: the position is the event's time, and a shifted mark
 * would misstate it.
 */

/** Rows a lane may grow to; past that a burst overlaps in the last rows (keys reach every mark). */
export const MAX_STACK_ROWS = 8;

/**
 * The row (0 = first) of each mark, given the marks' x positions in time order.
 *
 * A mark goes to the first row whose previous mark is at least `gap` to its left; when
 * none is free and `maxRows` are in use, to the row whose previous mark is furthest left,
 * so an overflow spreads over the rows instead of piling onto one
 * (ties to the row used longest ago).
 */
export function stackRows(xs: readonly number[], gap: number, maxRows = MAX_STACK_ROWS): number[] {
  const lastX: number[] = [];
  const lastUsed: number[] = []; // ties go to the row used longest ago: round robin
  return xs.map((x, i) => {
    let row = lastX.findIndex(last => x - last >= gap);
    if (row < 0) {
      if (lastX.length < maxRows) {
        row = lastX.length;
      } else {
        row = 0;
        for (let k = 1; k < lastX.length; k++) {
          if (lastX[k] < lastX[row] || (lastX[k] === lastX[row] && lastUsed[k] < lastUsed[row])) {
            row = k;
          }
        }
      }
    }
    lastX[row] = x;
    lastUsed[row] = i;
    return row;
  });
}
