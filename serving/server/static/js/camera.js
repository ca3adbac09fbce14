// The webcam: a live <video> and snapshots of it as image Blobs. Browsers offer it only in a secure context
// (https, or http on localhost / 127.0.0.1).

import { canvasToBlob } from "./images.js";

export function cameraAvailable() {
  return Boolean(navigator.mediaDevices?.getUserMedia);
}

export const CAMERA_UNAVAILABLE = "This browser offers no camera here (it needs https, or http on localhost).";

export class Camera {
  constructor(video) {
    this.video = video;
    this.stream = null;
    this.starting = null;
    this.generation = 0;  // bumped by stop(), so that a start still under way gives its stream back
    video.muted = true;
    video.playsInline = true;
  }

  /** True from `start()` on (while the camera is still starting, too) until `stop()`. */
  get running() {
    return Boolean(this.stream || this.starting);
  }

  start() {
    this.starting ??= this.open().finally(() => { this.starting = null; });
    return this.starting;
  }

  async open() {
    if (this.stream) return;
    if (!cameraAvailable()) throw new Error(CAMERA_UNAVAILABLE);
    const generation = this.generation;
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
    } catch (error) {
      throw new Error(`cannot start the camera: ${error.message || error.name}`);
    }
    if (generation !== this.generation) {
      stream.getTracks().forEach((track) => track.stop());
      return;
    }
    this.stream = stream;
    this.video.srcObject = stream;
    await this.video.play();
    await this.frameReady();
  }

  /** Wait until the video has a frame to draw (a camera may take a moment after play()). */
  async frameReady(timeoutMs = 5000) {
    const deadline = performance.now() + timeoutMs;
    while (!this.video.videoWidth || this.video.readyState < HTMLMediaElement.HAVE_CURRENT_DATA) {
      if (!this.stream || performance.now() > deadline) throw new Error("the camera gives no picture");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  stop() {
    this.generation += 1;
    this.stream?.getTracks().forEach((track) => track.stop());
    this.stream = null;
    this.video.srcObject = null;
  }

  /** The current frame as a JPEG Blob (the server crops and resizes it like any upload). */
  async snapshot() {
    await this.starting;
    if (!this.stream) throw new Error("start the camera first");
    await this.frameReady();
    const canvas = document.createElement("canvas");
    canvas.width = this.video.videoWidth;
    canvas.height = this.video.videoHeight;
    canvas.getContext("2d").drawImage(this.video, 0, 0);
    return canvasToBlob(canvas, "image/jpeg", 0.92);
  }
}
