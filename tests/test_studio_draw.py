"""The studio's Draw tab in real Chromium against a real server holding a tiny SPADE export (untrained, seeded:
`trainer.sample_exports`): two strokes of two classes give a non-blank picture whose two regions differ in colour.
The palette comes from the model's metadata; the drawing the page sends has exactly the class colours."""
from __future__ import annotations

import base64
import io
import os
import tempfile

import numpy as np
import pytest
import serving_helpers as sh
from PIL import Image
from studio_support import browser, studio  # noqa: F401 (fixtures)
from studio_support import IMAGE_SIZE, PHONE, Page, artifacts_dir, start_server

from trainer.sample_exports import SPADE_CLASSES

MODEL = "sketch"


@pytest.fixture(scope="module")
def server():
    home = tempfile.mkdtemp(prefix="genart-draw-")
    sh.build_registry(home, {MODEL: ("spade", [1])})
    process = start_server(home, "draw-server")
    yield process
    assert process.stop() == 0, process.log()


def stroke(page, canvas, start, end, steps: int = 8) -> None:
    """A pointer drag across the canvas between two points given as fractions of its size."""
    box = canvas.bounding_box()
    at = [(box["x"] + box["width"] * x, box["y"] + box["height"] * y) for x, y in (start, end)]
    page.mouse.move(*at[0])
    page.mouse.down()
    page.mouse.move(*at[1], steps=steps)
    page.mouse.up()


def data_url_pixels(url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))


def test_two_strokes_of_two_classes_give_a_picture_whose_regions_differ(studio):
    studio.open(MODEL)
    panel = studio.panel("draw")
    names = panel.locator(".swatch").evaluate_all("buttons => buttons.map(b => b.dataset.name)")
    assert names == list(SPADE_CLASSES)
    panel.locator("select[name=brush]").select_option("16")
    canvas = panel.locator("canvas.sketch")
    panel.locator(".swatch[data-name=grass]").click()
    stroke(studio.page, canvas, (0.05, 0.2), (0.95, 0.2))
    panel.locator(".swatch[data-name=water]").click()
    stroke(studio.page, canvas, (0.05, 0.75), (0.95, 0.75))
    studio.run(panel)
    assert panel.locator("[role=alert]").text_content() == ""
    drawing = data_url_pixels(canvas.evaluate("c => c.toDataURL('image/png')"))
    colours = {tuple(c) for c in drawing.reshape(-1, 3)}
    assert colours == {tuple(c) for c in SPADE_CLASSES.values()}  # no anti-aliased pixel: exactly the classes
    picture = data_url_pixels(panel.locator("[data-result] img").get_attribute("src")).astype(float)
    assert picture.shape == (IMAGE_SIZE, IMAGE_SIZE, 3) and picture.std() > 1  # not blank
    ids = np.asarray(Image.fromarray(drawing).resize((IMAGE_SIZE, IMAGE_SIZE), Image.NEAREST))
    means = {name: picture[(ids == colour).all(-1)].mean(0) for name, colour in SPADE_CLASSES.items()
             if name in ("grass", "water")}
    difference = float(np.abs(means["grass"] - means["water"]).max())
    print(f"mean colours of the two stroke regions differ by up to {difference:.1f} / 255")
    assert difference > 20
    panel.screenshot(path=os.path.join(artifacts_dir(), "draw.png"))
    assert not studio.errors, studio.errors


def test_draw_fits_a_phone_and_takes_touch(browser, server):
    studio = Page(browser, server.url, PHONE)
    try:
        studio.open(MODEL)
        panel = studio.panel("draw")
        assert studio.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], "draw overflows"
        canvas = panel.locator("canvas.sketch")
        box = canvas.bounding_box()
        canvas.dispatch_event("pointerdown", {"pointerId": 7, "pointerType": "touch", "isPrimary": True,
                                              "clientX": box["x"] + box["width"] / 2,
                                              "clientY": box["y"] + box["height"] / 2})
        canvas.dispatch_event("pointerup", {"pointerId": 7, "pointerType": "touch"})
        drawing = data_url_pixels(canvas.evaluate("c => c.toDataURL('image/png')"))
        sky, grass = tuple(SPADE_CLASSES["sky"]), tuple(SPADE_CLASSES["grass"])
        assert {tuple(c) for c in drawing.reshape(-1, 3)} == {sky, grass}
        panel.locator("[data-action=undo]").click()
        drawing = data_url_pixels(canvas.evaluate("c => c.toDataURL('image/png')"))
        assert {tuple(c) for c in drawing.reshape(-1, 3)} == {sky}
        studio.run(panel)
        assert panel.locator("[data-result] img").get_attribute("src").startswith("data:image/png")
        studio.page.screenshot(path=os.path.join(artifacts_dir(), "studio-draw-phone.png"), full_page=True)
        assert studio.errors == []
    finally:
        studio.close()
