// An animated strip of frames (a latent walk, an interpolation): a player cycling through the frames, the frames
// side by side below it, and a GIF download of the animation.

import { encodeGif } from "./gif.js";
import { scaledCanvas } from "./images.js";
import { actionButton, h, saveBlob, timestamp } from "./ui.js";

const FRAME_MS = 125;

export class FrameStrip {
  constructor({ fileStem, label }) {
    this.fileStem = fileStem;
    this.label = label;
    this.images = [];
    this.scale = 1;
    this.timer = null;
    this.player = h("img", { class: "player pixelated", alt: `${label}, animated` });
    this.frames = h("div", { class: "strip", role: "list", "aria-label": `${label}, frame by frame` });
    this.gifButton = actionButton("gif", "Download GIF", () => this.downloadGif(), { disabled: true });
    this.caption = h("figcaption", {}, label);
    this.element = h("figure", { class: "frame-strip", hidden: true }, this.caption,
      h("div", { class: "strip-body" }, this.player,
        h("div", { class: "strip-side" }, this.frames, h("div", { class: "actions" }, this.gifButton))));
  }

  /** Show decoded <img> frames, `scale` times enlarged, and start the animation. */
  show(images, scale) {
    this.images = images;
    this.scale = scale;
    const width = images[0].naturalWidth * scale;
    this.player.style.width = `${Math.max(width, 160)}px`;
    this.frames.replaceChildren(...images.map((image, index) => {
      image.classList.add("pixelated");
      image.style.width = `${Math.max(32, Math.min(width, 96))}px`;
      image.setAttribute("role", "listitem");
      image.alt = `frame ${index + 1} of ${images.length}`;
      return image;
    }));
    this.caption.textContent = `${this.label} · ${images.length} frames`;
    this.gifButton.disabled = false;
    this.element.hidden = false;
    this.play();
  }

  play() {
    this.stop();
    let index = 0;
    const step = () => {
      this.frames.children[index]?.classList.remove("current");
      index = (index + 1) % this.images.length;
      this.player.src = this.images[index].src;
      this.frames.children[index].classList.add("current");
    };
    this.player.src = this.images[0].src;
    this.frames.children[0].classList.add("current");
    if (this.images.length > 1 && !window.matchMedia("(prefers-reduced-motion: reduce)").matches) {
      this.timer = setInterval(step, FRAME_MS);
    }
  }

  /** Start the animation again (after `stop`), when there is one. */
  resume() {
    if (this.images.length && !this.timer) this.play();
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    for (const frame of this.frames.children) frame.classList.remove("current");
  }

  clear() {
    this.stop();
    this.images = [];
    this.frames.replaceChildren();
    this.gifButton.disabled = true;
    this.element.hidden = true;
  }

  downloadGif() {
    const frames = this.images.map((image) => {
      const canvas = scaledCanvas(image, this.scale);
      return canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
    });
    saveBlob(encodeGif(frames, { delayMs: FRAME_MS }), `${this.fileStem}-${timestamp()}.gif`);
  }
}
