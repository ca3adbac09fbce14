// The model and version picker: GET /v1/models for the list, GET .../metadata for the chosen one's signatures.

import { h } from "./ui.js";

const RETRY_MS = 3000;

/** One servable (model name + version, null = latest) and the signatures its metadata lists. */
export class ModelInfo {
  constructor(name, version, metadata) {
    this.name = name;
    this.version = version;
    this.servedVersion = metadata?.model_spec?.version ?? version;
    const signatures = metadata?.metadata?.signature_def?.signature_def ?? {};
    this.signatures = Object.fromEntries(
      Object.entries(signatures).filter(([signatureName]) => !signatureName.startsWith("__")));
    this.classes = metadata?.metadata?.classes ?? null;  // genart's extension: [{"name", "color"?}]
  }

  has(signatureName) {
    return signatureName in this.signatures;
  }

  /** The static sizes of an input's dimensions ([-1, 100] -> [-1, 100]), or null when not in the metadata. */
  inputDims(signatureName, inputName) {
    const dims = this.signatures[signatureName]?.inputs?.[inputName]?.tensor_shape?.dim;
    return dims ? dims.map((dim) => Number(dim.size)) : null;
  }

  get latentDim() {
    const dims = this.inputDims("embeddings", "embeddings");
    return dims && dims[1] > 0 ? dims[1] : null;
  }

  get label() {
    return `${this.name} v${this.servedVersion}`;
  }
}

function availableVersions(entry) {
  return (entry.model_version_status ?? [])
    .filter((status) => status.state === "AVAILABLE")
    .map((status) => status.version)
    .sort((a, b) => Number(b) - Number(a));
}

function describeStates(entry) {
  const states = (entry.model_version_status ?? []).map((status) => {
    const error = status.status?.error_message;
    return `version ${status.version} ${status.state}${error ? `: ${error}` : ""}`;
  });
  return states.length ? states.join("; ") : "no version found yet";
}

export class ModelPicker {
  /** elements: {modelSelect, versionSelect, refreshButton, status, alert}; onChange(ModelInfo | null). */
  constructor(api, elements, onChange) {
    Object.assign(this, elements);
    this.api = api;
    this.onChange = onChange;
    this.entries = [];
    this.wanted = new URLSearchParams(window.location.search).get("model");
    this.retryTimer = null;
    this.choice = 0;  // numbers each choice, so that only the latest one's metadata answer is used
    this.modelSelect.addEventListener("change", () => this.fillVersions());
    this.versionSelect.addEventListener("change", () => this.choose());
    this.refreshButton.addEventListener("click", () => this.refresh());
  }

  setStatus(text) {
    this.status.textContent = text;
  }

  scheduleRetry() {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.refresh(), RETRY_MS);
  }

  /** (Re)load the model list; keeps the current choice when it is still there. */
  async refresh() {
    clearTimeout(this.retryTimer);
    this.alert.textContent = "";
    let listing;
    try {
      listing = await this.api.listModels();
    } catch (error) {
      if (error.status === 404 && this.wanted) {  // a plain TF Serving has no model list: use ?model=NAME
        listing = { models: [{ name: this.wanted, model_version_status: [{ version: "", state: "AVAILABLE" }] }] };
      } else {
        this.setStatus(error.status === 401 ? "This server needs an access token." : "Cannot list the models.");
        if (error.status !== 401) this.alert.textContent = error.message;
        this.onChange(null);
        return;
      }
    }
    this.entries = listing.models ?? [];
    const current = this.modelSelect.value || this.wanted;
    const ready = this.entries.filter((entry) => availableVersions(entry).length);
    this.modelSelect.replaceChildren(...this.entries.map((entry) =>
      h("option", { value: entry.name, selected: entry.name === current },
        availableVersions(entry).length ? entry.name : `${entry.name} (not loaded yet)`)));
    if (!ready.length) {
      this.setStatus(this.entries.length
        ? `No model is loaded yet (${this.entries.map((e) => `${e.name}: ${describeStates(e)}`).join("; ")}). `
          + "This page checks again every few seconds."
        : "No model is deployed on this server yet: deploy one with ./create_model.sh -j JOB. "
          + "This page checks again every few seconds.");
      this.onChange(null);
      this.scheduleRetry();
      return;
    }
    if (!ready.some((entry) => entry.name === this.modelSelect.value)) this.modelSelect.value = ready[0].name;
    await this.fillVersions();
  }

  async fillVersions() {
    const entry = this.entries.find((candidate) => candidate.name === this.modelSelect.value);
    const versions = entry ? availableVersions(entry).filter(Boolean) : [];
    const current = this.versionSelect.value;
    this.versionSelect.replaceChildren(h("option", { value: "" }, "latest"),
      ...versions.map((version) => h("option", { value: version, selected: version === current }, version)));
    await this.choose();
  }

  async choose() {
    const choice = ++this.choice;
    const name = this.modelSelect.value;
    const version = this.versionSelect.value || null;
    const entry = this.entries.find((candidate) => candidate.name === name);
    if (!entry || !availableVersions(entry).length) {
      this.setStatus(`Model ${name} is not loaded yet (${entry ? describeStates(entry) : "unknown"}).`);
      this.onChange(null);
      this.scheduleRetry();
      return;
    }
    this.setStatus(`Loading the signatures of ${name}…`);
    try {
      const metadata = await this.api.metadata(name, version);
      if (choice !== this.choice) return;
      const model = new ModelInfo(name, version, metadata);
      const names = Object.keys(model.signatures).filter((signature) => signature !== "serving_default").sort();
      this.setStatus(`${model.label}: ${names.join(", ") || "no signatures"}`
        + (model.latentDim ? ` · latent dimension ${model.latentDim}` : ""));
      this.onChange(model);
    } catch (error) {
      if (choice !== this.choice) return;
      this.setStatus(`Cannot read the metadata of ${name}.`);
      if (error.status !== 401) this.alert.textContent = error.message;
      this.onChange(null);
    }
  }
}
