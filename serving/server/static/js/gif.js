// An animated GIF89a encoder: one global palette (median cut over all frames, up to 256 colours), LZW-compressed
// frames, looping forever. Enough for the studio's strips of small model outputs; no third-party code.

const MAX_SAMPLES = 65536;

/**
 * The cut of `box` (sorted by `channel`) nearest to `middle` with different values on each side, so that no
 * colour lands in two boxes: pictures of at most 256 colours get an exact palette.
 */
function boundaryNear(box, middle, channel) {
  const value = box[middle][channel];
  let low = middle, high = middle;
  while (low > 0 && box[low - 1][channel] === value) low--;
  while (high < box.length && box[high][channel] === value) high++;
  if (low === 0) return high;
  if (high === box.length) return low;
  return middle - low <= high - middle ? low : high;
}

/** Up to 256 [r, g, b] colours that represent `frames` (ImageData[]), by median cut over sampled pixels. */
export function medianCutPalette(frames, maxColours = 256) {
  const total = frames.reduce((sum, frame) => sum + frame.width * frame.height, 0);
  const stride = Math.max(1, Math.floor(total / MAX_SAMPLES));
  const samples = [];
  let counter = 0;
  for (const frame of frames) {
    for (let p = 0; p < frame.data.length; p += 4) {
      if (counter++ % stride === 0) samples.push([frame.data[p], frame.data[p + 1], frame.data[p + 2]]);
    }
  }
  const boxes = [samples];
  const spread = (box) => [0, 1, 2].map((c) => {
    let low = 255, high = 0;
    for (const pixel of box) { low = Math.min(low, pixel[c]); high = Math.max(high, pixel[c]); }
    return high - low;
  });
  while (boxes.length < maxColours) {
    let best = -1, bestScore = 0, bestChannel = 0;
    boxes.forEach((box, index) => {
      const ranges = spread(box);
      const channel = ranges.indexOf(Math.max(...ranges));
      const score = ranges[channel] * Math.sqrt(box.length);
      if (box.length > 1 && score > bestScore) { best = index; bestScore = score; bestChannel = channel; }
    });
    if (best < 0) break;
    const box = boxes[best].sort((a, b) => a[bestChannel] - b[bestChannel]);
    const cut = boundaryNear(box, box.length >> 1, bestChannel);
    boxes.splice(best, 1, box.slice(0, cut), box.slice(cut));
  }
  return boxes.filter((box) => box.length).map((box) => [0, 1, 2].map((c) =>
    Math.round(box.reduce((sum, pixel) => sum + pixel[c], 0) / box.length)));
}

/** The palette index of every pixel of `frame` (nearest colour, memoised per distinct colour). */
function indexPixels(frame, palette, cache) {
  const indices = new Uint8Array(frame.width * frame.height);
  for (let i = 0, p = 0; i < indices.length; i++, p += 4) {
    const key = (frame.data[p] << 16) | (frame.data[p + 1] << 8) | frame.data[p + 2];
    let index = cache.get(key);
    if (index === undefined) {
      let bestDistance = Infinity;
      palette.forEach(([r, g, b], candidate) => {
        const distance = (r - frame.data[p]) ** 2 + (g - frame.data[p + 1]) ** 2 + (b - frame.data[p + 2]) ** 2;
        if (distance < bestDistance) { bestDistance = distance; index = candidate; }
      });
      cache.set(key, index);
    }
    indices[i] = index;
  }
  return indices;
}

class ByteWriter {
  constructor() { this.bytes = []; }
  byte(...values) { for (const value of values) this.bytes.push(value & 0xff); }
  word(value) { this.byte(value, value >> 8); }
  text(string) { for (const char of string) this.byte(char.charCodeAt(0)); }
  /** Data as GIF sub-blocks (at most 255 bytes each) and the block terminator. */
  blocks(data) {
    for (let start = 0; start < data.length; start += 255) {
      const chunk = data.slice(start, start + 255);
      this.byte(chunk.length, ...chunk);
    }
    this.byte(0);
  }
}

/** GIF's variable-width LZW of palette indices (codes up to 12 bits, a clear code when the table is full). */
export function lzwEncode(indices, minCodeSize) {
  const clearCode = 1 << minCodeSize;
  const endCode = clearCode + 1;
  const out = [];
  let bitBuffer = 0, bitCount = 0;
  let codeSize = minCodeSize + 1, nextCode = endCode + 1;
  let table = new Map();
  const emit = (code) => {
    bitBuffer |= code << bitCount;
    bitCount += codeSize;
    while (bitCount >= 8) { out.push(bitBuffer & 0xff); bitBuffer >>>= 8; bitCount -= 8; }
  };
  emit(clearCode);
  let prefix = indices[0];
  for (let i = 1; i < indices.length; i++) {
    const key = (prefix << 8) | indices[i];
    const code = table.get(key);
    if (code !== undefined) { prefix = code; continue; }
    emit(prefix);
    if (nextCode === 4096) {
      emit(clearCode);
      table = new Map();
      codeSize = minCodeSize + 1;
      nextCode = endCode + 1;
    } else {
      if (nextCode >= 1 << codeSize) codeSize++;
      table.set(key, nextCode++);
    }
    prefix = indices[i];
  }
  emit(prefix);
  emit(endCode);
  if (bitCount > 0) out.push(bitBuffer & 0xff);
  return out;
}

/** An animated, looping GIF of same-size frames (ImageData[]), `delayMs` per frame, as a Blob. */
export function encodeGif(frames, { delayMs = 125 } = {}) {
  if (!frames.length) throw new Error("no frames to encode");
  const { width, height } = frames[0];
  const palette = medianCutPalette(frames);
  const bits = Math.max(1, Math.ceil(Math.log2(Math.max(2, palette.length))));
  const minCodeSize = Math.max(2, bits);
  const gif = new ByteWriter();
  gif.text("GIF89a");
  gif.word(width);
  gif.word(height);
  gif.byte(0x80 | ((bits - 1) << 4) | (bits - 1), 0, 0);  // global colour table of 2^bits entries
  for (let i = 0; i < 1 << bits; i++) gif.byte(...(palette[i] ?? [0, 0, 0]));
  gif.byte(0x21, 0xff, 11);
  gif.text("NETSCAPE2.0");
  gif.byte(3, 1);
  gif.word(0);  // loop forever
  gif.byte(0);
  const cache = new Map();
  const delay = Math.max(2, Math.round(delayMs / 10));
  for (const frame of frames) {
    if (frame.width !== width || frame.height !== height) throw new Error("GIF frames must have one size");
    gif.byte(0x21, 0xf9, 4, 1 << 2);  // graphic control: keep the frame (disposal 1), no transparency
    gif.word(delay);
    gif.byte(0, 0);
    gif.byte(0x2c);
    gif.word(0);
    gif.word(0);
    gif.word(width);
    gif.word(height);
    gif.byte(0);
    gif.byte(minCodeSize);
    gif.blocks(lzwEncode(indexPixels(frame, palette, cache), minCodeSize));
  }
  gif.byte(0x3b);
  return new Blob([new Uint8Array(gif.bytes)], { type: "image/gif" });
}
