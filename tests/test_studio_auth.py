"""The web studio behind `--auth-token-file`, in real Chromium: the page itself loads without a token, asks for
one once, keeps it for the tab (sessionStorage) and sends it as a Bearer header; a wrong token is refused with the
server's own message, in the page."""
from __future__ import annotations

import pytest
from studio_support import browser, studio  # noqa: F401 (fixtures)
from studio_support import start_server, tiny_models_home

TOKEN = "studio-secret-7f3a"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    token_file = tmp_path_factory.mktemp("token") / "token.txt"
    token_file.write_text(TOKEN + "\n")
    process = start_server(tiny_models_home(), "studio-auth-server", "--auth-token-file", str(token_file))
    yield process
    assert process.stop() == 0, process.log()


def submit_token(studio, token: str) -> None:
    form = studio.page.locator("#auth-form")
    form.locator("input").fill(token)
    form.locator("button[type=submit]").click()


def test_a_wrong_token_is_refused_clearly_and_the_right_one_works_for_the_whole_tab(studio):
    studio.open()
    form = studio.page.locator("#auth-form")
    form.wait_for()
    assert "needs an access token" in form.locator("[role=alert]").inner_text()
    assert "missing bearer token" in form.locator("[role=alert]").inner_text()

    submit_token(studio, "not-the-token")
    form.locator("[role=alert]").filter(has_text="refused").wait_for()
    assert "invalid bearer token" in form.locator("[role=alert]").inner_text()
    assert form.is_visible()

    submit_token(studio, TOKEN)
    studio.choose_model("vae")
    assert form.is_hidden()
    panel = studio.panel("generate")
    studio.run(panel)
    assert panel.locator("[data-result] .grid img").count() == 8
    assert panel.locator("[role=alert]").inner_text() == ""

    with studio.page.expect_request(lambda request: request.url.endswith("/v1/models")) as listing:
        studio.page.reload()  # the token is kept for this tab: not asked again
    assert listing.value.headers["authorization"] == f"Bearer {TOKEN}"
    studio.choose_model("vae")
    assert form.is_hidden()


def test_a_request_refused_mid_session_says_why_in_the_panel_and_asks_again(studio):
    studio.open()
    submit_token(studio, TOKEN)
    studio.choose_model("vae")
    studio.page.evaluate("sessionStorage.setItem('genart.studio.token', 'rotated-away')")
    panel = studio.panel("generate")
    studio.run(panel)
    assert panel.locator("[role=alert]").inner_text().startswith("Unauthenticated: invalid bearer token")
    assert "refused" in studio.page.locator("#auth-form [role=alert]").inner_text()
    assert studio.page.locator("#auth-form").is_visible()


def test_the_page_and_its_files_need_no_token(server):
    import httpx

    assert httpx.get(server.url + "/").status_code == 200
    assert httpx.get(server.url + "/static/js/main.js").status_code == 200
    assert httpx.get(server.url + "/v1/models").status_code == 401
