// Encode (`image_bytes`): an uploaded, dropped or webcam image -> its embedding (the posterior mean), shown as
// numbers and bars, downloadable as a JSON instance of the `embeddings` signature -> and, when the model also
// has `embeddings`, the reconstruction decoded from it beside the input.

import { EnlargeControl } from "../controls.js";
import { ImagePicker } from "../picker.js";
import { decodeEmbeddings, encodeImages } from "../predict.js";
import { actionButton, h, panelLayout, runBusy, saveBlob, showError, timestamp } from "../ui.js";

const DECIMALS = 4;

/** A bar per component, centred on zero, scaled to the largest magnitude. */
function drawBars(canvas, vector) {
  const context = canvas.getContext("2d");
  const { width, height } = canvas;
  const largest = Math.max(1e-9, ...vector.map(Math.abs));
  const barWidth = width / vector.length;
  context.clearRect(0, 0, width, height);
  context.fillStyle = "#888";
  context.fillRect(0, height / 2, width, 1);
  vector.forEach((value, index) => {
    const barHeight = (value / largest) * (height / 2 - 2);
    context.fillStyle = value >= 0 ? "#2f6fde" : "#d9534f";
    context.fillRect(index * barWidth, height / 2 - Math.max(barHeight, 0), Math.max(1, barWidth - 1),
      Math.abs(barHeight));
  });
}

function create(panel, studio) {
  let model = null;
  let embedding = null;
  const picker = new ImagePicker({ label: "Image", onError: (error) => showError(panel, error.message) });
  const enlarge = new EnlargeControl();
  const numbers = h("pre", { class: "vector", tabindex: "0", "aria-label": "embedding values" });
  const bars = h("canvas", { class: "bars", width: 320, height: 80, "aria-hidden": "true" });
  const caption = h("figcaption", {}, "Embedding");
  const reconstruction = h("figure", { class: "frame", hidden: true }, h("figcaption", {}, "Reconstruction"));
  const vectorFigure = h("figure", { class: "vector-figure", hidden: true }, caption, bars, numbers);
  const downloadButton = actionButton("download", "Download JSON", () => downloadJson(), { disabled: true });

  const encode = () => runBusy(panel, async () => {
    if (!picker.blob) throw new Error("choose an image first (upload, drop or camera snapshot)");
    [embedding] = await encodeImages(studio.api, model, [picker.blob]);
    caption.textContent = `Embedding (${embedding.length} numbers)`;
    numbers.textContent = embedding.map((value) => value.toFixed(DECIMALS)).join(" ");
    drawBars(bars, embedding);
    vectorFigure.hidden = false;
    downloadButton.disabled = false;
    reconstruction.replaceChildren(reconstruction.firstChild);
    reconstruction.hidden = true;
    if (model.has("embeddings")) {
      const [image] = await decodeEmbeddings(studio.api, model, [embedding], "reconstruction");
      enlarge.apply([image]);
      reconstruction.append(image);
      reconstruction.hidden = false;
    }
  });

  function downloadJson() {
    const instance = JSON.stringify({ embeddings: embedding, key: picker.name || "0" }) + "\n";
    saveBlob(new Blob([instance], { type: "application/json" }), `embedding-${timestamp()}.json`);
  }

  panel.classList.add("side-by-side");
  panelLayout(panel, {
    controls: [picker.element, enlarge.element],
    actions: [actionButton("run", "Encode", encode, { class: "primary" }), downloadButton],
    results: h("div", { class: "results row", dataset: { result: "" }, "aria-live": "polite" },
      reconstruction, vectorFigure),
  });

  return {
    modelChanged: (next) => { model = next; },
    hidden: () => picker.stopCamera(),
  };
}

export default {
  name: "encode",
  title: "Encode",
  available: (model) => model.has("image_bytes"),
  create,
};
