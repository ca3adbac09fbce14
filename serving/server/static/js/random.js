// Reproducible prior samples: a seeded PRNG (mulberry32) and Gaussian draws by the Box-Muller transform.

export function mulberry32(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A function returning standard normal draws, seeded. */
export function gaussian(seed) {
  const uniform = mulberry32(seed);
  let spare = null;
  return () => {
    if (spare !== null) {
      const value = spare;
      spare = null;
      return value;
    }
    const u1 = 1 - uniform();  // (0, 1]: log(u1) is finite
    const u2 = uniform();
    const radius = Math.sqrt(-2 * Math.log(u1));
    spare = radius * Math.sin(2 * Math.PI * u2);
    return radius * Math.cos(2 * Math.PI * u2);
  };
}

/** `count` vectors of `dim` draws from N(0, temperature²), the same for the same seed. */
export function samplePrior(count, dim, seed, temperature = 1) {
  const draw = gaussian(seed);
  return Array.from({ length: count }, () =>
    Array.from({ length: dim }, () => Math.fround(draw() * temperature)));
}

export function randomSeed() {
  return Math.floor(Math.random() * 1_000_000);
}
