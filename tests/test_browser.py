"""The chat in a real Chromium, driven by Playwright, as a person would use it."""

from pathlib import Path

import pytest

pytestmark = pytest.mark.browser
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="module")
def page(ui_server):  # type: ignore[no-untyped-def]
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.dialogs = []  # type: ignore[attr-defined]
        pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))  # type: ignore[attr-defined]
        pg.goto(ui_server[0])
        pg.wait_for_selector("#question textarea", timeout=30_000)
        yield pg
        browser.close()


def ask(page, question: str, expect: str) -> None:  # type: ignore[no-untyped-def]
    page.fill("#question textarea", question)
    page.click("#send")
    page.wait_for_function(
        "([sel, text]) => document.querySelector(sel) && document.querySelector(sel).innerText.includes(text)",
        arg=["#chat", expect],
        timeout=60_000,
    )


def test_question_answer_sources_and_citation_click(page) -> None:  # type: ignore[no-untyped-def]
    ask(page, "Bưu điện Việt Nam có bao nhiêu điểm giao dịch?", "13.000")
    page.wait_for_selector("#sources .src-card#nguon-1", timeout=30_000)
    assert "13.000 điểm giao dịch" in page.inner_text("#sources mark")
    assert "truy xuất" in page.inner_text("#timing")
    page.locator("#chat a[href*='nguon-1']").last.click()
    page.wait_for_selector("#nguon-1.flash", timeout=5_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "chat-answer.png"), full_page=True)


def test_follow_up_is_answered_and_shows_how_it_was_understood(page) -> None:  # type: ignore[no-untyped-def]
    ask(page, "Đến năm 2025, Hải Dương muốn thuộc nhóm bao nhiêu tỉnh dẫn đầu về chuyển đổi số?", "20")
    page.wait_for_function("() => document.querySelector('#timing').innerText.includes('truy xuất')")
    ask(page, "Còn năm 2030 thì sao?", "Còn năm 2030")
    page.wait_for_function(
        "() => document.querySelector('#timing').innerText.includes('được hiểu là')", timeout=30_000
    )
    assert "Đến năm 2030, Hải Dương muốn thuộc nhóm" in page.inner_text("#timing")
    assert "15" in page.locator("#chat .message").last.inner_text()
    page.screenshot(path=str(ARTIFACTS / "chat-follow-up.png"), full_page=True)


def test_upload_then_ask_and_hostile_text_stays_text(page, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    doc = tmp_path / "lao_cai.txt"
    doc.write_text(
        "Tỉnh Lào Cai có 31 điểm du lịch cộng đồng được công nhận.\n"
        "<script>window.__xss = 1; alert('xss')</script><img src=x onerror=\"window.__xss = 2; alert('img')\">",
        "utf-8",
    )
    page.get_by_text("Thêm tài liệu").click()
    page.set_input_files("#upload input[type=file]", str(doc))
    page.wait_for_timeout(1500)
    page.click("#add-docs")
    page.wait_for_function(
        "() => (document.querySelector('#upload-status') || {}).innerText?.includes('Đã thêm')",
        timeout=60_000,
    )
    ask(page, "Lào Cai có bao nhiêu điểm du lịch cộng đồng?", "31 điểm du lịch")
    page.wait_for_selector("#sources .src-card", timeout=30_000)
    page.wait_for_timeout(500)
    assert page.evaluate("window.__xss") is None
    assert page.dialogs == []  # type: ignore[attr-defined]
    assert page.locator("#sources img, #chat img[src='x']").count() == 0
    assert "<script>" in page.inner_text("#sources")  # shown as text
    page.screenshot(path=str(ARTIFACTS / "chat-upload.png"), full_page=True)
