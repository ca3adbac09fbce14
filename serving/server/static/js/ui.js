// Small DOM helpers shared by every tab: element builder, form fields, the busy/error wrapper of a panel's
// actions, and file downloads.

/** h("button", {type: "button", dataset: {action: "run"}, onclick}, "Run") -> HTMLButtonElement */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "dataset") Object.assign(element.dataset, value);
    else if (name === "class") element.className = value;
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name in element && typeof value !== "string") element[name] = value;
    else element.setAttribute(name, value === true ? "" : value);
  }
  element.append(...children.flat().filter((child) => child !== null && child !== undefined));
  return element;
}

let fieldCounter = 0;

/** A labelled control: <label for=id>text</label><input id=id ...>, wrapped in a .field div. */
export function field(text, control, hint) {
  control.id ||= `field-${++fieldCounter}`;
  return h("div", { class: "field" }, h("label", { for: control.id }, text), control,
    hint ? h("small", { class: "hint" }, hint) : null);
}

export function numberInput({ value, min, max, step = 1, name, id }) {
  return h("input", { type: "number", value: String(value), min: String(min), max: String(max),
    step: String(step), name, id, inputmode: step === 1 ? "numeric" : "decimal" });
}

/** The value of a number input, clamped to its min/max (an empty or invalid entry falls back to `fallback`). */
export function readNumber(input, fallback) {
  const value = Number(input.value);
  if (input.value === "" || !Number.isFinite(value)) return fallback;
  return Math.min(Number(input.max), Math.max(Number(input.min), value));
}

export function select(options, value, name) {
  return h("select", { name },
    options.map(([optionValue, text]) => h("option", { value: optionValue, selected: optionValue === value }, text)));
}

export function actionButton(action, text, onclick, props = {}) {
  return h("button", { type: "button", dataset: { action }, onclick, ...props }, text);
}

/** The scaffold every panel shares: controls, the main action row with a spinner, the alert, the results. */
export function panelLayout(panel, { controls, actions, results }) {
  const alert = h("p", { role: "alert", class: "alert" });
  const spinner = h("span", { class: "spinner", "aria-hidden": "true" });
  const busyText = h("span", { class: "visually-hidden", "aria-live": "polite" });
  panel.append(
    h("div", { class: "controls" }, controls),
    h("div", { class: "actions" }, actions, spinner, busyText),
    alert,
    results,
  );
  return { alert, busyText };
}

/**
 * Runs `work` as the panel's one request at a time: clears the panel's alert, shows the spinner and disables
 * its action buttons meanwhile, and puts any error's message, verbatim, in the panel's [role=alert].
 * Resolves to work's result, or undefined when it failed.
 */
export async function runBusy(panel, work) {
  const alert = panel.querySelector(":scope > [role=alert]");
  const busyText = panel.querySelector(".actions .visually-hidden");
  if (panel.getAttribute("aria-busy") === "true") return undefined;
  alert.textContent = "";
  panel.setAttribute("aria-busy", "true");
  busyText.textContent = "Working…";
  const buttons = [...panel.querySelectorAll("button[data-action]")].filter((button) => !button.disabled);
  buttons.forEach((button) => { button.disabled = true; });
  try {
    return await work();
  } catch (error) {
    alert.textContent = error?.message || String(error);
    return undefined;
  } finally {
    buttons.forEach((button) => { button.disabled = false; });
    panel.setAttribute("aria-busy", "false");
    busyText.textContent = "";
  }
}

export function showError(panel, message) {
  panel.querySelector(":scope > [role=alert]").textContent = message;
}

export function saveBlob(blob, fileName) {
  const url = URL.createObjectURL(blob);
  const link = h("a", { href: url, download: fileName, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

export function timestamp() {
  return new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19);
}
