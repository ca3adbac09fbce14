// The public REST API of a TF-Serving-compatible server, and nothing else: GET /v1/models, GET .../metadata,
// POST ...:predict. Errors become ApiError with the server's own {"error": ...} message, verbatim.

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

/** The API root: `?api=URL` in the page's address (for a page hosted elsewhere), else the page's own origin. */
export function apiBase(location = window.location) {
  const given = new URLSearchParams(location.search).get("api");
  const base = new URL(given || "./", location.href);
  if (!base.pathname.endsWith("/")) base.pathname += "/";
  return base;
}

export function modelPath(name, version) {
  const model = `v1/models/${encodeURIComponent(name)}`;
  return version ? `${model}/versions/${encodeURIComponent(version)}` : model;
}

async function errorMessage(response) {
  const text = await response.text();
  try {
    const body = JSON.parse(text);
    if (body && typeof body.error === "string") return body.error;
  } catch { /* not JSON: fall through */ }
  return `${response.status} ${response.statusText}${text ? `: ${text.slice(0, 300)}` : ""}`;
}

export class Api {
  /** tokenStore: {get(): string|null}; onUnauthorized(error) is called on every 401 answer. */
  constructor({ base = apiBase(), tokenStore, onUnauthorized = () => {} } = {}) {
    this.base = base;
    this.tokenStore = tokenStore;
    this.onUnauthorized = onUnauthorized;
  }

  async request(path, { method = "GET", body } = {}) {
    const headers = { Accept: "application/json" };
    const token = this.tokenStore?.get();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(new URL(path, this.base), {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store",
      });
    } catch (error) {
      throw new ApiError(`cannot reach the server at ${this.base.origin} (${error.message})`, 0);
    }
    if (!response.ok) {
      const error = new ApiError(await errorMessage(response), response.status);
      if (response.status === 401) this.onUnauthorized(error);
      throw error;
    }
    return response.json();
  }

  listModels() {
    return this.request("v1/models");
  }

  metadata(name, version) {
    return this.request(`${modelPath(name, version)}/metadata`);
  }

  /** POST {signature_name, instances} and return the predictions (row format). */
  async predict(name, version, signatureName, instances) {
    const answer = await this.request(`${modelPath(name, version)}:predict`, {
      method: "POST", body: { signature_name: signatureName, instances },
    });
    if (!Array.isArray(answer.predictions) || answer.predictions.length !== instances.length) {
      throw new ApiError(`unexpected answer: expected ${instances.length} predictions, got `
        + `${JSON.stringify(answer).slice(0, 200)}`, 200);
    }
    return answer.predictions;
  }
}
