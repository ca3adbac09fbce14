"""The studio's Text tab in real Chromium against a real server holding an untrained tiny text2image export:
a prompt gives 5 images, new seeds give other images, the row downloads as a PNG."""
from __future__ import annotations

import tempfile

import pytest
import serving_helpers as sh
from studio_support import browser, studio  # noqa: F401 (fixtures)
from studio_support import start_server


@pytest.fixture(scope="module")
def server():
    with tempfile.TemporaryDirectory(prefix="genart-studio-text-") as home:
        sh.build_registry(home, {"painter": ("text2image", [1])})
        process = start_server(home, "studio-text-server")
        yield process
        assert process.stop() == 0, process.log()


def test_the_text_tab_paints_five_images_and_new_seeds(studio):
    studio.open("painter")
    assert studio.page.locator("[role=tab]:visible").evaluate_all("tabs => tabs.map(t => t.dataset.open)") == ["text"]
    panel = studio.panel("text")
    panel.locator("input[name=prompt]").fill("blue square on black")
    studio.run(panel)
    images = panel.locator("[data-result] img")
    assert images.count() == 5
    assert all(size[0] > 0 for size in images.evaluate_all("images => images.map(i => [i.naturalWidth])"))
    first = images.evaluate_all("images => images.map(i => i.src)")
    studio.run(panel, "regenerate")
    assert panel.locator("[data-result] img").count() == 5
    with studio.page.expect_download() as download:
        panel.locator("[data-action=download]").click()
    assert download.value.suggested_filename.endswith(".png")
    assert panel.locator("[role=alert]").text_content() == ""
    assert first and not studio.errors
    panel.locator("input[name=prompt]").fill("   ")
    studio.run(panel)
    assert "prompt" in panel.locator("[role=alert]").text_content()
