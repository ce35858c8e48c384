/**
 * Counts turns of the event loop (a setImmediate chain) and the most units of work done within one turn: how
 * tests check that long work yields, in units of work rather than in time (a slower machine only makes turns
 * hold fewer units).
 */
export interface LoopTurns {
  /** Call once per unit of work. */
  work(): void;
  /** Ends the count. */
  stop(): void;
  /** Turns counted so far. */
  readonly turns: number;
  /** The most units done within one turn. */
  readonly most: number;
}

export function countLoopTurns(): LoopTurns {
  let turns = 0;
  let thisTurn = 0;
  let most = 0;
  let running = true;
  const spin = (): void => {
    turns++;
    thisTurn = 0;
    if (running) setImmediate(spin);
  };
  setImmediate(spin);
  return {
    work: () => {
      most = Math.max(most, ++thisTurn);
    },
    stop: () => {
      running = false;
    },
    get turns() {
      return turns;
    },
    get most() {
      return most;
    },
  };
}
