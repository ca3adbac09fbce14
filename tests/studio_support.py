"""Shared by the web studio's browser tests: real tiny exports (an untrained VAE-GAN and CycleGAN from
`trainer.sample_exports`, via `serving_helpers`), a real `python -m serving.server` over them, and Debian's
Chromium driven by Playwright (its own browser download does not work offline).

Chromium missing: the browser tests fail under CI (`CI=true`: `scripts/test.sh` installs it) and skip elsewhere,
saying how to install it. Screenshots go to `bench/out/studio/` (git-ignored), or `$GENART_TEST_ARTIFACTS`.
"""
from __future__ import annotations

import atexit
import io
import os
import shutil
import tempfile

import numpy as np
import pytest
import serving_helpers as sh
from PIL import Image
from playwright.sync_api import sync_playwright

from conftest import REPO_ROOT

LATENT_DIM = sh.LATENT_DIM
IMAGE_SIZE = sh.IMAGE_SIZE
CHROMIUM_NAMES = ("chromium", "chromium-browser")
CHROMIUM_FLAGS = [  # headless and off the network; a fake camera that the page may use without asking
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
TIMEOUT_MS = 60_000  # one predict on a busy 2-core machine can take seconds


def artifacts_dir() -> str:
    path = os.environ.get("GENART_TEST_ARTIFACTS") or os.path.join(REPO_ROOT, "bench", "out", "studio")
    os.makedirs(path, exist_ok=True)
    return path


def chromium_path() -> str:
    """Debian's chromium, or a skip (a failure under CI, where scripts/test.sh must have installed it)."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    reason = ("Debian's chromium is not installed (scripts/test.sh installs it: apt-get install -y chromium); "
              "the web studio's browser tests need it")
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason)
    pytest.skip(reason)


def export_tiny_models(home: str) -> str:
    """Deploy an untrained VAE-GAN (`vae`) and CycleGAN (`cyc`) as version 1 into `home` (exports of
    `trainer.sample_exports`, i.e. of `trainer.export`); returns the models.config path."""
    return sh.build_registry(home, {"vae": ("vaegan", [1]), "cyc": ("cyclegan", [1])})


_shared_home: str | None = None


def tiny_models_home() -> str:
    """A GENART_HOME holding `vae` and `cyc` (see export_tiny_models), made once per test process."""
    global _shared_home
    if _shared_home is None:
        home = tempfile.mkdtemp(prefix="genart-studio-")
        atexit.register(shutil.rmtree, home, True)
        export_tiny_models(home)
        _shared_home = home
    return _shared_home


def start_server(home: str, log_name: str, *extra: str, wait_ready: bool = True) -> sh.ServerProcess:
    """`python -m serving.server` on a free REST port (no gRPC) serving `home`'s models.config."""
    return sh.ServerProcess(*extra, "--port", "0", log_path=os.path.join(home, f"{log_name}.log"),
                            env={"GENART_HOME": home}, wait_ready=wait_ready)


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, through Playwright; one per test module."""
    executable = chromium_path()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


def png_file(path: str, seed: int, size: tuple[int, int] = (40, 30)) -> str:
    """A colourful PNG (a gradient plus noise) for uploads."""
    rng = np.random.default_rng(seed)
    height, width = size[1], size[0]
    gradient = np.stack(np.meshgrid(np.linspace(0, 255, width), np.linspace(0, 255, height)), -1)
    pixels = np.concatenate([gradient, rng.uniform(0, 255, (height, width, 1))], -1).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def pixel_std(png: bytes) -> float:
    """The standard deviation of a screenshot's pixels: ~0 for a blank (one-colour) picture."""
    return float(np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32).std())


class Page:
    """A Playwright page on the studio that records console errors, page errors and /v1/ requests."""

    def __init__(self, browser, url: str, viewport: dict = DESKTOP):
        self.context = browser.new_context(viewport=viewport, accept_downloads=True)
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.errors: list[str] = []
        self.api_requests: list[str] = []
        self.page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        self.page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        self.page.on("request", lambda request: "/v1/" in request.url and self.api_requests.append(
            f"{request.method} {request.url}"))
        self.url = url

    def open(self, model: str | None = None, fragment: str = "") -> "Page":
        self.page.goto(self.url + "/" + (f"#{fragment}" if fragment else ""))
        if model:
            self.choose_model(model)
        return self

    def choose_model(self, name: str) -> None:
        self.page.locator(f"#model-select option[value='{name}']").wait_for(state="attached")
        self.page.select_option("#model-select", name)
        self.page.locator("#model-status").filter(has_text=f"{name} v").wait_for()

    def panel(self, tab: str):
        self.page.click(f"[role=tab][data-open={tab}]")
        panel = self.page.locator(f"[data-tab={tab}]")
        panel.wait_for()
        return panel

    def run(self, panel, action: str = "run") -> None:
        """Click the panel's action button and wait until its request is answered."""
        panel.locator(f"[data-action={action}]").click()
        self.page.wait_for_function("panel => panel.getAttribute('aria-busy') === 'false'",
                                    arg=panel.element_handle())

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def studio(browser, server):
    """A fresh page on the studio of the test module's `server` fixture."""
    page = Page(browser, server.url)
    yield page
    page.close()
