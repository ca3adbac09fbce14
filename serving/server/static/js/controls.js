// Controls more than one tab uses.

import { autoScale } from "./images.js";
import { field, select } from "./ui.js";

/** "Enlarge": how many times larger results are shown and downloaded (auto: about 128 px wide). */
export class EnlargeControl {
  constructor() {
    this.select = select([["auto", "auto"], ["1", "1×"], ["2", "2×"], ["4", "4×"], ["8", "8×"]], "auto", "enlarge");
    this.element = field("Enlarge", this.select);
  }

  factor(image) {
    return this.select.value === "auto" ? autoScale(image) : Number(this.select.value);
  }

  /** Size `images` on the page by the chosen factor; returns the factor. */
  apply(images) {
    const scale = this.factor(images[0]);
    for (const image of images) {
      image.classList.add("pixelated");
      image.style.width = `${image.naturalWidth * scale}px`;
    }
    return scale;
  }
}
