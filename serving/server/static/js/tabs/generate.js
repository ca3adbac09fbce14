// Generate (`embeddings`): a grid of samples from the prior N(0, temperature²) with a seeded PRNG, PNG download of
// the grid, and a latent walk through the samples as an animated strip with a GIF download.

import { EnlargeControl } from "../controls.js";
import { canvasToBlob, gridCanvas } from "../images.js";
import { loopThrough } from "../latent.js";
import { decodeEmbeddings } from "../predict.js";
import { randomSeed, samplePrior } from "../random.js";
import { FrameStrip } from "../strip.js";
import { actionButton, field, h, numberInput, panelLayout, readNumber, runBusy, saveBlob, timestamp } from "../ui.js";

const MAX_WALK_FRAMES = 256;

function create(panel, studio) {
  let model = null;
  let images = [];
  let scale = 1;
  const count = numberInput({ value: 8, min: 1, max: 64, name: "count" });
  const seed = numberInput({ value: 1, min: 0, max: 2 ** 31 - 1, name: "seed", id: "generate-seed" });
  const temperature = numberInput({ value: 1, min: 0, max: 3, step: 0.05, name: "temperature" });
  const walkSteps = numberInput({ value: 6, min: 1, max: 32, name: "walk-steps" });
  const enlarge = new EnlargeControl();
  const grid = h("div", { class: "grid", "aria-live": "polite" });
  const gridCaption = h("figcaption", {}, "Samples");
  const samplesFigure = h("figure", { hidden: true, dataset: { result: "samples" } }, gridCaption, grid);
  const walk = new FrameStrip({ fileStem: "latent-walk", label: "Latent walk" });
  const downloadButton = actionButton("download", "Download PNG", () => downloadGrid(), { disabled: true });

  const settings = () => ({
    n: readNumber(count, 8), seed: readNumber(seed, 1), temperature: readNumber(temperature, 1),
  });
  const samples = () => {
    const { n, seed: seedValue, temperature: t } = settings();
    if (!model.latentDim) throw new Error("this model's metadata does not give the embedding size");
    return samplePrior(n, model.latentDim, seedValue, t);
  };

  const generate = () => runBusy(panel, async () => {
    images = await decodeEmbeddings(studio.api, model, samples(), "sample");
    scale = enlarge.apply(images);
    grid.replaceChildren(...images);
    const { seed: seedValue, temperature: t } = settings();
    gridCaption.textContent = `${images.length} samples · seed ${seedValue} · temperature ${t}`;
    samplesFigure.hidden = false;
    downloadButton.disabled = false;
  });

  const walkThrough = () => runBusy(panel, async () => {
    const points = samples();
    const steps = Math.max(1, Math.min(readNumber(walkSteps, 6), Math.floor(MAX_WALK_FRAMES / points.length)));
    const frames = await decodeEmbeddings(studio.api, model, loopThrough(points, steps), "walk frame");
    walk.show(frames, enlarge.factor(frames[0]));
  });

  async function downloadGrid() {
    const { seed: seedValue, temperature: t } = settings();
    const blob = await canvasToBlob(gridCanvas(images, { scale }));
    saveBlob(blob, `samples-seed${seedValue}-t${t}-${timestamp()}.png`);
  }

  const { alert } = panelLayout(panel, {
    controls: [
      field("Samples", count),
      h("div", { class: "field" }, h("label", { for: seed.id }, "Seed"),
        h("span", { class: "inline" }, seed, actionButton("reseed", "New seed", () => {
          seed.value = String(randomSeed());
        }, { title: "pick a random seed" }))),
      field("Temperature", temperature, "1 = the prior N(0, 1)"),
      enlarge.element,
      field("Walk steps", walkSteps, "frames between two samples"),
    ],
    actions: [actionButton("run", "Generate", generate, { class: "primary" }), downloadButton,
      actionButton("walk", "Latent walk", walkThrough)],
    results: h("div", { class: "results" }, samplesFigure, h("div", { dataset: { result: "walk" } }, walk.element)),
  });
  enlarge.select.addEventListener("change", () => { if (images.length) scale = enlarge.apply(images); });

  return {
    modelChanged(next) {
      model = next;
      alert.textContent = model.latentDim ? "" : "This model's metadata does not give the embedding size.";
    },
    shown: () => walk.resume(),
    hidden: () => walk.stop(),
  };
}

export default {
  name: "generate",
  title: "Generate",
  available: (model) => model.has("embeddings"),
  create,
};
