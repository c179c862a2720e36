// Seeded randomness for randomised tests: a small PRNG and the seed, taken from the environment to
// replay a run (TALLY_CHAOS_SEED=<the seed a run printed first>) or drawn fresh. A test prints its
// seed first (`console.log('seed', seed)`), before anything can fail, so every failure can be replayed.

/** The variable that replays a randomised run with the seed it printed. */
export const SEED_ENV = 'TALLY_CHAOS_SEED';

/** mulberry32: a small seeded PRNG, uniform in [0, 1); the same seed gives the same sequence. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The seed of this run: `env[name]` when set (a non-negative integer, taken as 32 bits), else a new
 * random one. Throws on a value that is not a non-negative integer rather than silently ignoring it.
 */
export function testSeed(name: string = SEED_ENV, env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return Math.floor(Math.random() * 2 ** 32) >>> 0;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name}=${raw} is not a non-negative integer`);
  return n >>> 0;
}
