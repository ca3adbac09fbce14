"""The web studio in real Chromium against a real `python -m serving.server` holding real tiny exports (an
untrained VAE-GAN `vae` and CycleGAN `cyc`), driven through the page's stable hooks (INTERFACE.md section 10):
`[role=tab][data-open]`, `[data-tab]` panels, `[data-action=run]`, `input[type=file]`, `[data-result]`,
`[role=alert]`. No mocks: every image on the page came from the server."""
from __future__ import annotations

import base64
import io
import json
import os
import re

import httpx
import numpy as np
import pytest
import serving_helpers as sh
from PIL import Image
from studio_support import browser, studio  # noqa: F401 (fixtures)
from studio_support import (DESKTOP, IMAGE_SIZE, LATENT_DIM, PHONE, Page, artifacts_dir, pixel_std,
                            png_file, start_server, tiny_models_home)

from serving import registry

NUMBER = re.compile(r"-?\d+\.\d+")


@pytest.fixture(scope="module")
def server():
    process = start_server(tiny_models_home(), "studio-server")
    yield process
    assert process.stop() == 0, process.log()


@pytest.fixture(scope="module")
def uploads(tmp_path_factory):
    folder = tmp_path_factory.mktemp("uploads")
    corrupt = folder / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG but not really an image")
    return {"a": png_file(str(folder / "a.png"), 1), "b": png_file(str(folder / "b.png"), 2, (30, 50)),
            "corrupt": str(corrupt)}


def visible_tabs(studio) -> list[str]:
    return studio.page.locator("[role=tab]:visible").evaluate_all("tabs => tabs.map(tab => tab.dataset.open)")


def natural_sizes(locator) -> list[list[int]]:
    return locator.evaluate_all("images => images.map(image => [image.naturalWidth, image.naturalHeight])")


def predict(server, model: str, body: dict) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/models/{model}:predict", json=body, timeout=60)


def image_instance(path: str) -> dict:
    with open(path, "rb") as f:
        return {"image_bytes": {"b64": base64.b64encode(f.read()).decode()}, "key": "0"}


def test_page_loads_without_console_errors_and_shows_the_tabs_of_each_model(studio):
    studio.open(model="vae")
    assert visible_tabs(studio) == ["generate", "encode", "interpolate"]
    assert f"latent dimension {LATENT_DIM}" in studio.page.locator("#model-status").inner_text()
    versions = studio.page.locator("#version-select option").evaluate_all("options => options.map(o => o.value)")
    assert versions == ["", "1"]
    studio.choose_model("cyc")
    assert visible_tabs(studio) == ["translate"]
    assert studio.page.locator("[data-tab=translate]").is_visible()
    assert studio.errors == []


def test_opening_a_tab_sends_no_request(studio):
    studio.open(model="vae")
    studio.api_requests.clear()
    for tab in ["encode", "interpolate", "generate", "encode"]:
        studio.panel(tab)
    studio.page.wait_for_timeout(300)
    assert studio.api_requests == []


def test_generate_shows_n_decoded_images_a_png_download_and_a_latent_walk_gif(studio):
    studio.open(model="vae")
    panel = studio.panel("generate")
    panel.locator("input[name=count]").fill("6")
    panel.locator("input[name=seed]").fill("42")
    studio.run(panel)
    samples = panel.locator("[data-result] .grid img")
    assert natural_sizes(samples) == [[IMAGE_SIZE, IMAGE_SIZE]] * 6
    first = samples.evaluate_all("images => images.map(image => image.src)")
    studio.run(panel)  # the same seed draws the same samples
    assert samples.evaluate_all("images => images.map(image => image.src)") == first
    assert len(set(first)) == 6

    with studio.page.expect_download() as download:
        panel.locator("[data-action=download]").click()
    grid = Image.open(download.value.path())
    scale = 128 // IMAGE_SIZE  # "auto" enlarges to about 128 px; 6 samples in 3 columns and 2 rows, 2 px apart
    assert grid.size == (3 * IMAGE_SIZE * scale + 4, 2 * IMAGE_SIZE * scale + 2)

    panel.locator("input[name=walk-steps]").fill("3")
    studio.run(panel, "walk")
    assert panel.locator("[data-result=walk] .strip img").count() == 6 * 3
    with studio.page.expect_download() as download:
        panel.locator("[data-action=gif]").click()
    gif = Image.open(download.value.path())
    assert (gif.format, gif.n_frames, gif.size) == ("GIF", 18, (IMAGE_SIZE * scale,) * 2)
    assert studio.errors == []


def test_encode_an_upload_shows_latent_dim_numbers_and_the_reconstruction(studio, server, uploads):
    studio.open(model="vae")
    panel = studio.panel("encode")
    panel.locator("input[type=file]").set_input_files(uploads["a"])
    studio.run(panel)
    numbers = [float(value) for value in NUMBER.findall(panel.locator("[data-result] .vector").inner_text())]
    expected = predict(server, "vae", {"instances": [image_instance(uploads["a"])]}).json()["predictions"][0]
    assert numbers == pytest.approx(expected["embeddings"], abs=1e-4) and len(numbers) == LATENT_DIM
    assert natural_sizes(panel.locator("[data-result] img")) == [[IMAGE_SIZE, IMAGE_SIZE]]

    with studio.page.expect_download() as download:
        panel.locator("[data-action=download]").click()
    with open(download.value.path()) as f:
        instance = json.load(f)
    assert instance == {"embeddings": expected["embeddings"], "key": "a.png"}
    assert predict(server, "vae", {"instances": [instance]}).status_code == 200  # a valid instance, as it is
    assert studio.errors == []


def test_encode_a_webcam_snapshot(studio):
    studio.open(model="vae")
    panel = studio.panel("encode")
    panel.locator("[data-action=camera]").click()
    panel.locator("[data-action=snapshot]").click()
    panel.locator("img[alt='snapshot.jpg (chosen image)']").wait_for()
    assert panel.locator("video").is_hidden()  # the camera is off again once the snapshot is taken
    studio.run(panel)
    assert len(NUMBER.findall(panel.locator("[data-result] .vector").inner_text())) == LATENT_DIM
    assert studio.errors == []


def test_interpolate_an_upload_and_a_dropped_image_gives_the_strip_and_its_gif(studio, uploads):
    studio.open(model="vae")
    panel = studio.panel("interpolate")
    panel.locator("input[type=file]").nth(0).set_input_files(uploads["a"])
    with open(uploads["b"], "rb") as f:  # B is dragged and dropped onto its picker
        dropped = studio.page.evaluate_handle("""b64 => {
            const transfer = new DataTransfer();
            const bytes = Uint8Array.from(atob(b64), (char) => char.charCodeAt(0));
            transfer.items.add(new File([bytes], "dropped.png", { type: "image/png" }));
            return transfer;
        }""", base64.b64encode(f.read()).decode())
    panel.locator(".drop-zone").nth(1).dispatch_event("drop", {"dataTransfer": dropped})
    assert panel.locator("img[alt='dropped.png (chosen image)']").is_visible()
    panel.locator("input[name=steps]").fill("5")
    studio.run(panel)
    frames = panel.locator("[data-result] .strip img")
    assert natural_sizes(frames) == [[IMAGE_SIZE, IMAGE_SIZE]] * 5
    with studio.page.expect_download() as download:
        panel.locator("[data-action=gif]").click()
    assert Image.open(download.value.path()).n_frames == 5
    assert studio.errors == []


def test_the_gif_encoder_round_trips_through_pillow(studio):
    """Frames of at most 256 colours come back exactly, also past LZW's 4096-code table (the clear code)."""
    studio.open()
    frames = studio.page.evaluate("""async () => {
        const { encodeGif } = await import("./static/js/gif.js");
        const { mulberry32 } = await import("./static/js/random.js");
        const random = mulberry32(7);
        const palette = Array.from({ length: 200 }, () => [0, 0, 0].map(() => Math.floor(random() * 256)));
        const frames = [0, 1, 2].map(() => {
            const frame = new ImageData(97, 61);
            for (let p = 0; p < frame.data.length; p += 4) {
                frame.data.set([...palette[Math.floor(random() * palette.length)], 255], p);
            }
            return frame;
        });
        const gif = new Uint8Array(await encodeGif(frames, { delayMs: 100 }).arrayBuffer());
        return { gif: Array.from(gif), pixels: frames.map((frame) => Array.from(frame.data)) };
    }""")
    gif = Image.open(io.BytesIO(bytes(frames["gif"])))
    assert (gif.n_frames, gif.size, gif.info["loop"], gif.info["duration"]) == (3, (97, 61), 0, 100)
    for index, expected in enumerate(frames["pixels"]):
        gif.seek(index)
        decoded = np.asarray(gif.convert("RGBA")).reshape(-1)
        assert np.array_equal(decoded, np.array(expected, dtype=np.uint8)), f"frame {index} differs"


def test_translate_from_the_fake_camera_shows_three_non_blank_frames(studio):
    studio.open(model="cyc")
    panel = studio.panel("translate")
    panel.locator("[data-action=camera]").click()
    studio.run(panel)
    assert panel.locator("[role=alert]").inner_text() == ""
    frames = [panel.locator(selector) for selector in ("video", "img[alt^=snapshot]", "img[alt^=translated]")]
    for frame in frames:
        assert frame.is_visible()
        assert pixel_std(frame.screenshot()) > 3.0
    assert natural_sizes(frames[2]) == [[IMAGE_SIZE, IMAGE_SIZE]]
    panel.locator("[data-action=camera]").click()  # stops the camera
    assert panel.locator("video").is_hidden()
    assert studio.errors == []


def test_translate_an_upload_in_the_chosen_direction(studio, uploads):
    studio.open(model="cyc")
    panel = studio.panel("translate")
    signatures = []
    studio.page.on("request", lambda request: request.method == "POST" and signatures.append(
        request.post_data_json["signature_name"]))
    panel.get_by_label("B → A").check()
    with studio.page.expect_response(re.compile(r":predict$")):
        panel.locator("input[type=file]").set_input_files(uploads["b"])  # an upload is translated at once
    panel.locator("img[alt^=translated]").wait_for()
    assert signatures == ["b_to_a"]
    assert natural_sizes(panel.locator("img[alt^=translated]")) == [[IMAGE_SIZE, IMAGE_SIZE]]


def test_an_api_error_appears_verbatim_in_the_panel_alert(studio, server, uploads):
    studio.open(model="vae")
    panel = studio.panel("encode")
    panel.locator("input[type=file]").set_input_files(uploads["corrupt"])
    studio.run(panel)
    corrupt = image_instance(uploads["corrupt"])
    answer = predict(server, "vae", {"signature_name": "image_bytes", "instances": [corrupt]})
    assert answer.status_code == 400
    assert panel.locator("[role=alert]").inner_text() == answer.json()["error"]
    assert panel.locator("[data-result] .vector").is_hidden()  # no blank or stale result beside the error
    run_without_image = studio.panel("interpolate")
    studio.run(run_without_image)
    assert "choose both images" in run_without_image.locator("[role=alert]").inner_text()


def test_keyboard_moves_between_tabs_and_runs_the_action(studio):
    studio.open(model="vae")
    studio.page.locator("[role=tab][aria-selected=true]").focus()
    studio.page.keyboard.press("Home")
    assert studio.page.evaluate("document.activeElement.dataset.open") == "generate"
    studio.page.keyboard.press("ArrowRight")
    assert studio.page.evaluate("document.activeElement.dataset.open") == "encode"
    assert studio.page.locator("[data-tab=encode]").is_visible()
    studio.page.keyboard.press("End")
    studio.page.keyboard.press("ArrowRight")  # wraps around
    assert studio.page.evaluate("document.activeElement.dataset.open") == "generate"
    panel = studio.page.locator("[data-tab=generate]")
    panel.locator("[data-action=run]").focus()
    studio.page.keyboard.press("Enter")
    panel.locator("[data-result] .grid img").first.wait_for()
    assert panel.locator("[data-result] .grid img").count() == 8


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_every_tab_at_phone_and_desktop_size_fits_and_its_screenshot_is_not_blank(browser, server, uploads,
                                                                                   viewport):
    studio = Page(browser, server.url, viewport)
    size = "phone" if viewport is PHONE else "desktop"

    def screenshot(tab: str) -> None:
        assert studio.page.evaluate("document.documentElement.scrollWidth") <= viewport["width"], f"{tab} overflows"
        path = os.path.join(artifacts_dir(), f"studio-{tab}-{size}.png")
        studio.page.screenshot(path=path, full_page=True)
        with open(path, "rb") as f:
            assert pixel_std(f.read()) > 10.0, f"{path} is blank"

    try:
        studio.open(model="vae")
        panel = studio.panel("generate")
        studio.run(panel)
        studio.run(panel, "walk")
        screenshot("generate")
        for tab, files in (("encode", [uploads["a"]]), ("interpolate", [uploads["a"], uploads["b"]])):
            panel = studio.panel(tab)
            for index, path in enumerate(files):
                panel.locator("input[type=file]").nth(index).set_input_files(path)
            studio.run(panel)
            screenshot(tab)
        studio.choose_model("cyc")
        panel = studio.panel("translate")
        panel.locator("[data-action=camera]").click()
        studio.run(panel)
        screenshot("translate")
        assert studio.errors == []
    finally:
        studio.close()


def test_the_page_works_before_any_model_is_deployed_and_picks_the_first_one_up(browser, tmp_path):
    home = str(tmp_path)
    process = start_server(home, "empty-server", wait_ready=False)
    studio = Page(browser, process.url)
    try:
        studio.open()
        studio.page.locator("#model-status").filter(has_text="No model is deployed").wait_for()
        assert visible_tabs(studio) == []
        sh.stage_job(home, "vae", "vaegan", seed=1)
        registry.deploy("vae", home=home)
        studio.page.locator("#model-status").filter(has_text="vae v1").wait_for()  # the page checks again
        assert visible_tabs(studio) == ["generate", "encode", "interpolate"]
        assert studio.errors == []
    finally:
        studio.close()
        assert process.stop() == 0, process.log()
