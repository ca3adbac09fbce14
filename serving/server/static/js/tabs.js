// The tab framework. A tab is one module (see tabs/index.js) exporting
//   { name, title, available(model) -> bool, create(panel, studio) -> { modelChanged?(model), shown?(), hidden?() } }
// It gets a role="tab" button (data-open=name) and a panel (data-tab=name); both are shown only while the chosen
// model has what `available` asks for. Opening a tab builds nothing new and sends no request.

import { h } from "./ui.js";

export class TabSet {
  constructor(tabList, panelContainer, tabs, studio) {
    this.tabList = tabList;
    this.entries = tabs.map((tab) => this.build(tab, panelContainer, studio));
    this.model = null;
    this.current = null;
    tabList.addEventListener("keydown", (event) => this.onKey(event));
  }

  build(tab, panelContainer, studio) {
    const button = h("button", {
      type: "button", role: "tab", id: `tab-${tab.name}`, dataset: { open: tab.name },
      "aria-controls": `panel-${tab.name}`, "aria-selected": "false", tabindex: "-1", hidden: true,
      onclick: () => this.open(tab.name),
    }, tab.title);
    const panel = h("section", {
      id: `panel-${tab.name}`, role: "tabpanel", class: "panel", dataset: { tab: tab.name },
      "aria-labelledby": `tab-${tab.name}`, "aria-busy": "false", hidden: true,
    });
    this.tabList.append(button);
    panelContainer.append(panel);
    const hooks = tab.create(panel, studio) ?? {};
    return { tab, button, panel, hooks };
  }

  visible() {
    return this.entries.filter((entry) => !entry.button.hidden);
  }

  /** Show the tabs the model supports (none for null) and tell every tab about the model. */
  setModel(model) {
    this.model = model;
    for (const entry of this.entries) {
      const available = Boolean(model) && entry.tab.available(model);
      entry.button.hidden = !available;
      if (available) entry.hooks.modelChanged?.(model);
    }
    const visible = this.visible();
    const wanted = window.location.hash.slice(1);
    const keep = visible.find((entry) => entry.tab.name === this.current)
      ?? visible.find((entry) => entry.tab.name === wanted) ?? visible[0];
    if (keep) this.open(keep.tab.name, { focus: false });
    else this.closeAll();
  }

  closeAll() {
    for (const entry of this.entries) this.setOpen(entry, false);
    this.current = null;
  }

  setOpen(entry, open) {
    if (!open && !entry.panel.hidden) entry.hooks.hidden?.();
    if (open && entry.panel.hidden) entry.hooks.shown?.();
    entry.panel.hidden = !open;
    entry.button.setAttribute("aria-selected", String(open));
    entry.button.tabIndex = open ? 0 : -1;
  }

  open(name, { focus = false } = {}) {
    const target = this.entries.find((entry) => entry.tab.name === name && !entry.button.hidden);
    if (!target) return;
    for (const entry of this.entries) if (entry !== target) this.setOpen(entry, false);
    this.setOpen(target, true);
    this.current = name;
    if (focus) target.button.focus();
    if (window.location.hash.slice(1) !== name) history.replaceState(null, "", `#${name}`);
  }

  /** Arrow keys, Home and End move between the visible tabs (WAI-ARIA tabs pattern, automatic activation). */
  onKey(event) {
    const visible = this.visible();
    const index = visible.findIndex((entry) => entry.tab.name === this.current);
    const moves = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: visible.length - 1 };
    if (!(event.key in moves) || !visible.length) return;
    event.preventDefault();
    const next = visible[(moves[event.key] + visible.length) % visible.length];
    this.open(next.tab.name, { focus: true });
  }
}
