// Image plumbing between the browser and the API: bytes <-> base64, {"b64"} predictions -> <img>, canvases for
// enlarged copies, grids and snapshots.

export function blobToBase64(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1] ?? "");
    reader.onerror = () => reject(new Error(`cannot read the image: ${reader.error?.message ?? "unknown error"}`));
    reader.readAsDataURL(blob);
  });
}

/** A {"b64": ...} image output of a prediction as a data: URL (PNG as the export promises). */
export function predictionImageUrl(prediction, output = "image_bytes") {
  const b64 = prediction?.[output]?.b64;
  if (typeof b64 !== "string" || !b64) {
    throw new Error(`the answer has no "${output}" image: ${JSON.stringify(prediction).slice(0, 200)}`);
  }
  return `data:image/png;base64,${b64}`;
}

/** A decoded <img>; rejects with a clear message when the browser cannot show it. */
export async function loadImage(src, alt = "") {
  const image = new Image();
  image.alt = alt;
  image.src = src;
  try {
    await image.decode();
  } catch {
    throw new Error(`the browser cannot show ${alt || "this image"}`);
  }
  return image;
}

/** `image` drawn `scale` times larger with hard pixel edges. */
export function scaledCanvas(image, scale = 1) {
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(image.naturalWidth * scale);
  canvas.height = Math.round(image.naturalHeight * scale);
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.imageSmoothingEnabled = false;
  context.drawImage(image, 0, 0, canvas.width, canvas.height);
  return canvas;
}

/** Same-size images laid out in a grid on a white canvas, each `scale` times larger, `gap` pixels apart. */
export function gridCanvas(images, { scale = 1, gap = 2, columns = Math.ceil(Math.sqrt(images.length)) } = {}) {
  const width = images[0].naturalWidth * scale;
  const height = images[0].naturalHeight * scale;
  const rows = Math.ceil(images.length / columns);
  const canvas = document.createElement("canvas");
  canvas.width = columns * width + (columns - 1) * gap;
  canvas.height = rows * height + (rows - 1) * gap;
  const context = canvas.getContext("2d");
  context.fillStyle = "#fff";
  context.fillRect(0, 0, canvas.width, canvas.height);
  context.imageSmoothingEnabled = false;
  images.forEach((image, index) => {
    const x = (index % columns) * (width + gap);
    const y = Math.floor(index / columns) * (height + gap);
    context.drawImage(image, x, y, width, height);
  });
  return canvas;
}

export function canvasToBlob(canvas, type = "image/png", quality = 0.92) {
  return new Promise((resolve, reject) => {
    canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("cannot encode the canvas"))), type, quality);
  });
}

/** A display size that makes a small model output comfortable to look at (16 px -> 8x, 64 px -> 2x). */
export function autoScale(image, target = 128) {
  return Math.max(1, Math.floor(target / Math.max(1, image.naturalWidth)));
}
