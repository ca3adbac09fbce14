// The model calls the tabs make, each one :predict request with a signature of INTERFACE.md section 3.

import { blobToBase64, loadImage, predictionImageUrl } from "./images.js";

const keyed = (values, build) => values.map((value, index) => ({ ...build(value), key: String(index) }));

async function imagesFrom(predictions, what) {
  return Promise.all(predictions.map((prediction, index) =>
    loadImage(predictionImageUrl(prediction), `${what} ${index + 1}`)));
}

async function imageInstances(blobs) {
  const encoded = await Promise.all(blobs.map(blobToBase64));
  return keyed(encoded, (b64) => ({ image_bytes: { b64 } }));
}

/** embeddings -> images (`embeddings` signature). */
export async function decodeEmbeddings(api, model, vectors, what = "image") {
  const instances = keyed(vectors, (embeddings) => ({ embeddings }));
  return imagesFrom(await api.predict(model.name, model.version, "embeddings", instances), what);
}

/** images -> embeddings (`image_bytes` signature: the posterior mean). */
export async function encodeImages(api, model, blobs) {
  const predictions = await api.predict(model.name, model.version, "image_bytes", await imageInstances(blobs));
  return predictions.map((prediction) => {
    if (!Array.isArray(prediction.embeddings)) {
      throw new Error(`the answer has no embeddings: ${JSON.stringify(prediction).slice(0, 200)}`);
    }
    return prediction.embeddings;
  });
}

/** image -> image (`a_to_b` or `b_to_a`). */
export async function translateImages(api, model, direction, blobs) {
  const predictions = await api.predict(model.name, model.version, direction, await imageInstances(blobs));
  return imagesFrom(predictions, `translated (${direction})`);
}

/** text -> images (`text` signature): one instance per key; the same text and key give the same image. */
export async function paintText(api, model, text, keys) {
  const instances = keys.map((key) => ({ text, key }));
  return imagesFrom(await api.predict(model.name, model.version, "text", instances), "painting");
}
