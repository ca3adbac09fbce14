// Draw (`label_map`, SPADE): paint a label map with the model's classes (names and colours from the metadata's
// "classes"), brush sizes, fill, undo, clear, an eraser that paints the chosen background class; "Generate" sends
// the drawing as a colour PNG and shows the picture beside it; both can be downloaded.

import { blobToBase64, loadImage, predictionImageUrl } from "../images.js";
import { LabelCanvas } from "../sketch.js";
import { actionButton, field, h, panelLayout, runBusy, saveBlob, select, timestamp } from "../ui.js";

const BRUSHES = [["2", "small"], ["4", "medium"], ["8", "large"], ["16", "huge"]];
const hex = (color) => `#${color.map((c) => c.toString(16).padStart(2, "0")).join("")}`;

/** A colour chip; its colour set through the CSSOM (the page's CSP refuses inline style attributes). */
function chip(color) {
  const element = h("span", { class: "chip" });
  element.style.backgroundColor = hex(color);
  return element;
}

function create(panel, studio) {
  let model = null;
  let classes = [];
  let picture = null;
  const sketch = new LabelCanvas();
  const palette = h("div", { class: "palette", role: "radiogroup", "aria-label": "Class to paint" });
  const background = select([], "", "background");
  const brush = select(BRUSHES, "4", "brush");
  const tool = select([["brush", "brush"], ["fill", "fill"], ["eraser", "eraser"]], "brush", "tool");
  const output = h("img", { class: "square pixelated", alt: "generated picture", hidden: true });
  const placeholder = h("span", { class: "placeholder" }, "no picture yet");
  const downloadPicture = actionButton("download-picture", "Download picture", () => savePicture(), { disabled: true });

  const applyTool = () => {
    sketch.radius = Number(brush.value);
    sketch.mode = tool.value === "fill" ? "fill" : "brush";
    const chosen = palette.querySelector("[aria-checked=true]");
    sketch.brushClass = tool.value === "eraser" ? Number(background.value) : Number(chosen?.dataset.class ?? 0);
  };
  brush.addEventListener("change", applyTool);
  tool.addEventListener("change", applyTool);
  background.addEventListener("change", applyTool);

  function choose(button) {
    for (const other of palette.children) other.setAttribute("aria-checked", String(other === button));
    if (tool.value === "eraser") tool.value = "brush";
    applyTool();
  }

  function setClasses(list) {
    classes = list;
    palette.replaceChildren(...classes.map((item, id) => h("button", {
      type: "button", role: "radio", class: "swatch", "aria-checked": String(id === Math.min(1, classes.length - 1)),
      dataset: { class: String(id), name: item.name }, title: item.name,
      onclick: (event) => choose(event.currentTarget),
    }, chip(item.color), item.name)));
    background.replaceChildren(...classes.map((item, id) => h("option", { value: String(id) }, item.name)));
    background.value = "0";
    sketch.setPalette(classes.map((item) => item.color), 0);
    applyTool();
  }

  const generate = () => runBusy(panel, async () => {
    if (!classes.length) throw new Error("this model's metadata lists no classes to draw with");
    const b64 = await blobToBase64(await sketch.toBlob());
    const [prediction] = await studio.api.predict(model.name, model.version, "label_map",
      [{ label_map: { b64 }, key: "0" }]);
    picture = await loadImage(predictionImageUrl(prediction), "generated picture");
    output.src = picture.src;
    output.hidden = false;
    placeholder.hidden = true;
    downloadPicture.disabled = false;
  });

  async function savePicture() {
    if (picture) saveBlob(await (await fetch(picture.src)).blob(), `picture-${timestamp()}.png`);
  }

  panelLayout(panel, {
    controls: [
      h("div", { class: "field palette-field" }, h("span", { class: "legend" }, "Classes"), palette),
      field("Tool", tool), field("Brush", brush), field("Background (eraser, clear)", background),
    ],
    actions: [
      actionButton("run", "Generate", generate, { class: "primary" }),
      actionButton("undo", "Undo", () => sketch.undo()),
      actionButton("clear", "Clear", () => sketch.clear(Number(background.value))),
      actionButton("download-drawing", "Download drawing",
        async () => saveBlob(await sketch.toBlob(), `drawing-${timestamp()}.png`)),
      downloadPicture,
    ],
    results: h("div", { class: "results row", dataset: { result: "" }, "aria-live": "polite" },
      h("figure", { class: "frame" }, h("figcaption", {}, "Drawing"), sketch.canvas),
      h("figure", { class: "frame" }, h("figcaption", {}, "Picture"), output, placeholder)),
  });

  return {
    modelChanged(next) {
      model = next;
      const list = (next.classes ?? []).filter((item) => Array.isArray(item.color));
      if (JSON.stringify(list) !== JSON.stringify(classes)) setClasses(list);
    },
  };
}

export default {
  name: "draw",
  title: "Draw",
  available: (model) => model.has("label_map"),
  create,
};
