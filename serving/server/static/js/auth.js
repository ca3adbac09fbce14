// `--auth-token-file`: the page asks for the bearer token once and keeps it for this browser tab
// (sessionStorage), until the server refuses it.

const STORAGE_KEY = "genart.studio.token";

export const tokenStore = {
  get() {
    return sessionStorage.getItem(STORAGE_KEY);
  },
  set(token) {
    sessionStorage.setItem(STORAGE_KEY, token);
  },
  clear() {
    sessionStorage.removeItem(STORAGE_KEY);
  },
};

/** The token form of the page (#auth-form): shown on a 401, stores the token and calls `onToken` on submit. */
export class TokenForm {
  constructor(form, store, onToken) {
    this.form = form;
    this.store = store;
    this.input = form.querySelector("input");
    this.alert = form.querySelector("[role=alert]");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const token = this.input.value.trim();
      if (!token) return;
      store.set(token);
      this.input.value = "";
      this.alert.textContent = "";
      this.form.hidden = true;
      onToken(token);
    });
  }

  /** Ask for a (new) token; `error.message` says why: missing, or the one given was refused. */
  ask(error) {
    const hadToken = Boolean(this.store.get());
    this.store.clear();
    this.alert.textContent = hadToken
      ? `The server refused this token: ${error.message}`
      : `This server needs an access token: ${error.message}`;
    if (this.form.hidden) {
      this.form.hidden = false;
      this.input.focus();
    }
  }
}
