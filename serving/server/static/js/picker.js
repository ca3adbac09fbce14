// An image source for a panel: a file input, drag-and-drop onto the preview, and (where the browser has one) a
// webcam snapshot. `picker.blob` holds the chosen image's bytes, sent to the API as they are.

import { Camera, CAMERA_UNAVAILABLE, cameraAvailable } from "./camera.js";
import { actionButton, h } from "./ui.js";

export class ImagePicker {
  constructor({ label, onPick = () => {}, onError = () => {} }) {
    this.blob = null;
    this.name = "";
    this.onPick = onPick;
    this.onError = onError;
    this.preview = h("img", { class: "preview", alt: `${label}: no image chosen yet`, hidden: true });
    this.video = h("video", { class: "preview", hidden: true, "aria-label": `${label}: camera` });
    this.camera = new Camera(this.video);
    this.placeholder = h("span", { class: "placeholder" }, "Drop an image here");
    this.preview.addEventListener("error", () => {
      if (!this.blob) return;
      this.preview.hidden = true;
      this.placeholder.hidden = false;
      this.placeholder.textContent = `${this.name}: no preview (the server will say what it makes of it)`;
    });
    this.input = h("input", { type: "file", accept: "image/*", "aria-label": `${label}: choose an image file`,
      onchange: () => this.input.files[0] && this.pick(this.input.files[0], this.input.files[0].name) });
    this.cameraButton = actionButton("camera", "Use camera", () => this.toggleCamera(),
      { disabled: !cameraAvailable(), title: cameraAvailable() ? "" : CAMERA_UNAVAILABLE });
    this.snapshotButton = actionButton("snapshot", "Take snapshot", () => this.takeSnapshot(), { hidden: true });
    this.drop = h("div", { class: "drop-zone" }, this.preview, this.video, this.placeholder);
    for (const type of ["dragenter", "dragover"]) {
      this.drop.addEventListener(type, (event) => { event.preventDefault(); this.drop.classList.add("dragging"); });
    }
    this.drop.addEventListener("dragleave", () => this.drop.classList.remove("dragging"));
    this.drop.addEventListener("drop", (event) => this.onDrop(event));
    this.element = h("figure", { class: "picker" }, h("figcaption", {}, label), this.drop,
      h("div", { class: "picker-buttons" }, this.input, this.cameraButton, this.snapshotButton));
  }

  onDrop(event) {
    event.preventDefault();
    this.drop.classList.remove("dragging");
    const file = event.dataTransfer?.files?.[0];
    if (file) this.pick(file, file.name);
  }

  pick(blob, name) {
    this.stopCamera();
    this.blob = blob;
    this.name = name;
    URL.revokeObjectURL(this.preview.src);
    this.preview.src = URL.createObjectURL(blob);
    this.preview.alt = `${name} (chosen image)`;
    this.preview.hidden = false;
    this.placeholder.hidden = true;
    this.placeholder.textContent = "Drop an image here";
    this.onPick(this);
  }

  async toggleCamera() {
    if (this.camera.running) {
      this.stopCamera();
      return;
    }
    try {
      this.video.hidden = false;
      this.preview.hidden = true;
      this.placeholder.hidden = true;
      await this.camera.start();
      this.cameraButton.textContent = "Stop camera";
      this.snapshotButton.hidden = false;
    } catch (error) {
      this.stopCamera();
      this.onError(error);
    }
  }

  async takeSnapshot() {
    try {
      this.pick(await this.camera.snapshot(), "snapshot.jpg");
    } catch (error) {
      this.onError(error);
    }
  }

  stopCamera() {
    this.camera.stop();
    this.video.hidden = true;
    this.cameraButton.textContent = "Use camera";
    this.snapshotButton.hidden = true;
    this.preview.hidden = !this.blob;
    this.placeholder.hidden = Boolean(this.blob);
  }
}
