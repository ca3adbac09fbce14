// The Draw tab's canvas: a map of class ids painted with hard edges (no anti-aliasing: every pixel is exactly one
// class colour), shown through a <canvas>. Brush (round, any size), flood fill, undo, clear; pointer events, so a
// mouse, a pen and touch all draw.

const MAX_UNDO = 40;

export class LabelCanvas {
  /** `size`: the drawing's side in pixels; `colors`: [[r, g, b], ...] per class id. */
  constructor(size = 128) {
    this.size = size;
    this.canvas = document.createElement("canvas");
    this.canvas.width = this.canvas.height = size;
    this.canvas.className = "sketch pixelated";
    this.canvas.setAttribute("aria-label", "drawing canvas");
    this.context = this.canvas.getContext("2d", { willReadFrequently: true });
    this.ids = new Uint8Array(size * size);
    this.colors = [[255, 255, 255]];
    this.undoStack = [];
    this.brushClass = 0;
    this.radius = 4;
    this.mode = "brush";  // or "fill"
    this.last = null;
    this.canvas.addEventListener("pointerdown", (event) => this.onDown(event));
    this.canvas.addEventListener("pointermove", (event) => this.onMove(event));
    for (const name of ["pointerup", "pointercancel"]) this.canvas.addEventListener(name, () => { this.last = null; });
  }

  setPalette(colors, background = 0) {
    this.colors = colors;
    this.undoStack = [];
    this.ids.fill(background);
    this.render();
  }

  clear(background) {
    this.remember();
    this.ids.fill(background);
    this.render();
  }

  undo() {
    const previous = this.undoStack.pop();
    if (!previous) return;
    this.ids.set(previous);
    this.render();
  }

  remember() {
    this.undoStack.push(this.ids.slice());
    if (this.undoStack.length > MAX_UNDO) this.undoStack.shift();
  }

  point(event) {
    const box = this.canvas.getBoundingClientRect();
    return [Math.floor((event.clientX - box.left) * this.size / box.width),
      Math.floor((event.clientY - box.top) * this.size / box.height)];
  }

  onDown(event) {
    event.preventDefault();
    try {
      this.canvas.setPointerCapture(event.pointerId);  // keep the stroke when the finger leaves the canvas
    } catch {
      // a pointer the browser does not track (a synthetic event): draw without capture
    }
    this.remember();
    const [x, y] = this.point(event);
    if (this.mode === "fill") {
      this.fill(x, y, this.brushClass);
    } else {
      this.last = [x, y];
      this.stroke(x, y, x, y, this.brushClass);
    }
    this.render();
  }

  onMove(event) {
    if (!this.last || this.mode !== "brush") return;
    event.preventDefault();
    const [x, y] = this.point(event);
    this.stroke(...this.last, x, y, this.brushClass);
    this.last = [x, y];
    this.render();
  }

  /** A round brush of `this.radius` dragged from (x0, y0) to (x1, y1), painting class `id`. */
  stroke(x0, y0, x1, y1, id) {
    const steps = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0)));
    for (let step = 0; step <= steps; step++) {
      this.disc(Math.round(x0 + (x1 - x0) * step / steps), Math.round(y0 + (y1 - y0) * step / steps), id);
    }
  }

  disc(cx, cy, id) {
    const r = this.radius;
    for (let y = Math.max(0, cy - r); y <= Math.min(this.size - 1, cy + r); y++) {
      for (let x = Math.max(0, cx - r); x <= Math.min(this.size - 1, cx + r); x++) {
        if ((x - cx) ** 2 + (y - cy) ** 2 <= r * r + r) this.ids[y * this.size + x] = id;
      }
    }
  }

  /** Flood fill (4-connected) of the region of (x, y) with class `id`. */
  fill(x, y, id) {
    const { size, ids } = this;
    if (x < 0 || y < 0 || x >= size || y >= size) return;
    const from = ids[y * size + x];
    if (from === id) return;
    const stack = [y * size + x];
    while (stack.length) {
      const at = stack.pop();
      if (ids[at] !== from) continue;
      ids[at] = id;
      const px = at % size;
      if (px > 0) stack.push(at - 1);
      if (px < size - 1) stack.push(at + 1);
      if (at >= size) stack.push(at - size);
      if (at < size * (size - 1)) stack.push(at + size);
    }
  }

  render() {
    const image = this.context.createImageData(this.size, this.size);
    this.ids.forEach((id, index) => {
      const [r, g, b] = this.colors[id] ?? [0, 0, 0];
      image.data.set([r, g, b, 255], index * 4);
    });
    this.context.putImageData(image, 0, 0);
  }

  toBlob() {
    return new Promise((resolve, reject) => {
      const done = (blob) => (blob ? resolve(blob) : reject(new Error("cannot encode the drawing")));
      this.canvas.toBlob(done, "image/png");
    });
  }
}
