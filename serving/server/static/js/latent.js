// Paths through latent space: straight (lerp) or along the great circle (slerp, better for Gaussian samples).

export function lerp(a, b, t) {
  return a.map((value, i) => value + (b[i] - value) * t);
}

export function slerp(a, b, t) {
  const norm = (v) => Math.hypot(...v);
  const [normA, normB] = [norm(a), norm(b)];
  if (!normA || !normB) return lerp(a, b, t);
  const cosine = a.reduce((sum, value, i) => sum + value * b[i], 0) / (normA * normB);
  const omega = Math.acos(Math.min(1, Math.max(-1, cosine)));
  if (Math.abs(Math.sin(omega)) < 1e-6) return lerp(a, b, t);
  const [wa, wb] = [Math.sin((1 - t) * omega), Math.sin(t * omega)].map((w) => w / Math.sin(omega));
  return a.map((value, i) => wa * value + wb * b[i]);
}

/** `steps` points from a to b, both ends included. */
export function between(a, b, steps, spherical = false) {
  const mix = spherical ? slerp : lerp;
  return Array.from({ length: steps }, (_, i) => mix(a, b, steps === 1 ? 0 : i / (steps - 1)));
}

/** A closed walk through every point and back to the first, `stepsPerLeg` frames per leg (ends not repeated). */
export function loopThrough(points, stepsPerLeg, spherical = true) {
  if (points.length < 2) return points.slice();
  return points.flatMap((point, i) =>
    between(point, points[(i + 1) % points.length], stepsPerLeg + 1, spherical).slice(0, stepsPerLeg));
}
