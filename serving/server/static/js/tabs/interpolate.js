// Interpolate (`image_bytes` + `embeddings`): two images -> their embeddings -> N steps between them -> the
// decoded strip, animated, with a GIF download.

import { EnlargeControl } from "../controls.js";
import { between } from "../latent.js";
import { ImagePicker } from "../picker.js";
import { decodeEmbeddings, encodeImages } from "../predict.js";
import { FrameStrip } from "../strip.js";
import { actionButton, field, h, numberInput, panelLayout, readNumber, runBusy, select, showError } from "../ui.js";

function create(panel, studio) {
  let model = null;
  const onError = (error) => showError(panel, error.message);
  const pickers = ["Start image (A)", "End image (B)"].map((label) => new ImagePicker({ label, onError }));
  const steps = numberInput({ value: 8, min: 2, max: 64, name: "steps" });
  const path = select([["lerp", "straight line"], ["slerp", "great circle (slerp)"]], "lerp", "path");
  const enlarge = new EnlargeControl();
  const strip = new FrameStrip({ fileStem: "interpolation", label: "Interpolation" });

  const interpolate = () => runBusy(panel, async () => {
    if (pickers.some((picker) => !picker.blob)) throw new Error("choose both images first (A and B)");
    const [start, end] = await encodeImages(studio.api, model, pickers.map((picker) => picker.blob));
    const vectors = between(start, end, readNumber(steps, 8), path.value === "slerp");
    const frames = await decodeEmbeddings(studio.api, model, vectors, "step");
    strip.show(frames, enlarge.factor(frames[0]));
  });

  panelLayout(panel, {
    controls: [
      h("div", { class: "pickers" }, pickers.map((picker) => picker.element)),
      h("div", { class: "controls" }, field("Steps", steps, "images from A to B, both included"),
        field("Path", path), enlarge.element),
    ],
    actions: [actionButton("run", "Interpolate", interpolate, { class: "primary" })],
    results: h("div", { class: "results", dataset: { result: "" }, "aria-live": "polite" }, strip.element),
  });

  return {
    modelChanged: (next) => { model = next; },
    shown: () => strip.resume(),
    hidden: () => {
      strip.stop();
      pickers.forEach((picker) => picker.stopCamera());
    },
  };
}

export default {
  name: "interpolate",
  title: "Interpolate",
  available: (model) => model.has("image_bytes") && model.has("embeddings"),
  create,
};
