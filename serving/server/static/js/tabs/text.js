// Text (`text`): a prompt -> 5 images, each one `text` instance with its own key (the export's noise is a function
// of text and key, so a seed gives the same images again); "New seeds" paints the prompt again, "Download" saves
// the row as one PNG.

import { EnlargeControl } from "../controls.js";
import { canvasToBlob, gridCanvas } from "../images.js";
import { paintText } from "../predict.js";
import { randomSeed } from "../random.js";
import { actionButton, field, h, numberInput, panelLayout, readNumber, runBusy, saveBlob, timestamp } from "../ui.js";

const COUNT = 5;

function create(panel, studio) {
  let model = null;
  let images = [];
  let scale = 1;
  const prompt = h("input", { type: "text", name: "prompt", id: "text-prompt", value: "red circle on white",
    maxlength: "500", autocomplete: "off" });
  const seed = numberInput({ value: 1, min: 0, max: 2 ** 31 - 1, name: "seed", id: "text-seed" });
  const enlarge = new EnlargeControl();
  const row = h("div", { class: "grid", "aria-live": "polite" });
  const caption = h("figcaption", {}, "Paintings");
  const figure = h("figure", { hidden: true, dataset: { result: "paintings" } }, caption, row);
  const downloadButton = actionButton("download", "Download PNG", () => download(), { disabled: true });

  const paint = () => runBusy(panel, async () => {
    const text = prompt.value.trim();
    if (!text) throw new Error("type a prompt first, e.g. red circle on white");
    const seedValue = readNumber(seed, 1);
    const keys = Array.from({ length: COUNT }, (_, index) => `${seedValue}-${index}`);
    images = await paintText(studio.api, model, text, keys);
    scale = enlarge.apply(images);
    row.replaceChildren(...images);
    caption.textContent = `"${text}" · seed ${seedValue}`;
    figure.hidden = false;
    downloadButton.disabled = false;
  });

  const regenerate = () => {
    seed.value = String(randomSeed());
    return paint();
  };

  async function download() {
    const blob = await canvasToBlob(gridCanvas(images, { scale, columns: images.length }));
    saveBlob(blob, `text-seed${readNumber(seed, 1)}-${timestamp()}.png`);
  }

  prompt.addEventListener("keydown", (event) => { if (event.key === "Enter") paint(); });
  panelLayout(panel, {
    controls: [field("Prompt", prompt, "what to paint, in the words of the captions it learned"),
      field("Seed", seed, "the same prompt and seed paint the same images"), enlarge.element],
    actions: [actionButton("run", "Generate", paint, { class: "primary" }),
      actionButton("regenerate", "New seeds", regenerate, { title: "paint the prompt again with a random seed" }),
      downloadButton],
    results: h("div", { class: "results" }, figure),
  });
  enlarge.select.addEventListener("change", () => { if (images.length) scale = enlarge.apply(images); });

  return { modelChanged(next) { model = next; } };
}

export default {
  name: "text",
  title: "Text",
  available: (model) => model.has("text"),
  create,
};
