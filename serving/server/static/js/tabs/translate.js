// Translate (`a_to_b` / `b_to_a`), An.i.me's three frames: the live webcam, the snapshot sent, the translated
// answer — or an uploaded image instead of the camera; a direction toggle; "keep going" repeats while the
// camera runs.

import { Camera, CAMERA_UNAVAILABLE, cameraAvailable } from "../camera.js";
import { translateImages } from "../predict.js";
import { actionButton, h, panelLayout, runBusy, showError } from "../ui.js";

const DIRECTIONS = [["a_to_b", "A → B"], ["b_to_a", "B → A"]];
const REPEAT_MS = 300;

function frame(caption, content, placeholder) {
  return h("figure", { class: "frame" }, h("figcaption", {}, caption), content,
    h("span", { class: "placeholder" }, placeholder));
}

function create(panel, studio) {
  let model = null;
  let upload = null;
  let repeatTimer = null;
  const video = h("video", { class: "square", "aria-label": "live camera", hidden: true });
  const camera = new Camera(video);
  const snapshot = h("img", { class: "square", alt: "snapshot sent to the model", hidden: true });
  const translated = h("img", { class: "square pixelated", alt: "translated image", hidden: true });
  const radios = DIRECTIONS.map(([value], index) => h("input", {
    type: "radio", name: "translate-direction", value, id: `direction-${value}`, checked: index === 0,
  }));
  const cameraButton = actionButton("camera", "Start camera", () => toggleCamera(),
    { disabled: !cameraAvailable(), title: cameraAvailable() ? "" : CAMERA_UNAVAILABLE });
  const keepGoing = h("input", { type: "checkbox", id: "translate-repeat" });
  const fileInput = h("input", { type: "file", accept: "image/*", id: "translate-file",
    onchange: () => fileInput.files[0] && useUpload(fileInput.files[0]) });

  const direction = () => radios.find((radio) => radio.checked && !radio.disabled)?.value;
  const show = (element, visible) => {
    element.hidden = !visible;
    element.nextElementSibling.hidden = visible;  // the frame's placeholder
  };

  const translate = () => runBusy(panel, async () => {
    clearTimeout(repeatTimer);
    const source = camera.running ? await camera.snapshot() : upload;
    if (!source) throw new Error("start the camera or choose an image first");
    URL.revokeObjectURL(snapshot.src);
    snapshot.src = URL.createObjectURL(source);
    show(snapshot, true);
    const signature = direction();
    if (!signature) throw new Error("this model has neither a_to_b nor b_to_a");
    const [image] = await translateImages(studio.api, model, signature, [source]);
    translated.src = image.src;
    show(translated, true);
  }).then(() => {
    if (keepGoing.checked && camera.running && !panel.hidden && !panel.querySelector("[role=alert]").textContent) {
      repeatTimer = setTimeout(translate, REPEAT_MS);
    }
  });

  async function toggleCamera() {
    if (camera.running) {
      stopCamera();
      return;
    }
    try {
      show(video, true);
      await camera.start();
      cameraButton.textContent = "Stop camera";
    } catch (error) {
      stopCamera();
      showError(panel, error.message);
    }
  }

  function stopCamera() {
    clearTimeout(repeatTimer);
    camera.stop();
    show(video, false);
    cameraButton.textContent = "Start camera";
  }

  function useUpload(file) {
    stopCamera();
    upload = file;
    translate();
  }

  panelLayout(panel, {
    controls: [
      h("fieldset", { class: "toggle" }, h("legend", {}, "Direction"),
        radios.map((radio, index) => h("label", { for: radio.id }, radio, DIRECTIONS[index][1]))),
      h("div", { class: "field" }, h("label", { for: fileInput.id }, "Or upload an image"), fileInput),
      h("label", { class: "check", for: keepGoing.id }, keepGoing, "Keep going while the camera runs"),
    ],
    actions: [cameraButton, actionButton("run", "Snapshot & translate", translate, { class: "primary" })],
    results: h("div", { class: "results row three", dataset: { result: "" }, "aria-live": "polite" },
      frame("Live", video, "camera off"), frame("Snapshot", snapshot, "nothing sent yet"),
      frame("Translated", translated, "no result yet")),
  });

  return {
    modelChanged(next) {
      model = next;
      radios.forEach((radio) => { radio.disabled = !model.has(radio.value); });
      if (!direction()) radios.find((radio) => !radio.disabled).checked = true;
    },
    hidden: () => stopCamera(),
  };
}

export default {
  name: "translate",
  title: "Translate",
  available: (model) => model.has("a_to_b") || model.has("b_to_a"),
  create,
};
