// The studio page: token form, model picker and tabs, wired together.

import { Api } from "./api.js";
import { TokenForm, tokenStore } from "./auth.js";
import { ModelPicker } from "./models.js";
import { TabSet } from "./tabs.js";
import { TABS } from "./tabs/index.js";

const byId = (id) => document.getElementById(id);

function start() {
  const api = new Api({ tokenStore });
  const tabs = new TabSet(byId("tab-list"), byId("panels"), TABS, { api });
  const picker = new ModelPicker(api, {
    modelSelect: byId("model-select"),
    versionSelect: byId("version-select"),
    refreshButton: byId("refresh-models"),
    status: byId("model-status"),
    alert: byId("page-alert"),
  }, (model) => tabs.setModel(model));
  const tokenForm = new TokenForm(byId("auth-form"), tokenStore, () => picker.refresh());
  api.onUnauthorized = (error) => tokenForm.ask(error);
  picker.refresh();
}

start();
