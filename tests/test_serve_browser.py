"""The web page end to end in headless Chromium: search and add songs, recommendations change, reorder, remove,
export, start from a pid, error states, keyboard flow, no CSP violations, the offline API docs.

Needs Debian's ``chromium`` and ``chromium-driver`` (``apt-get install -y chromium chromium-driver``; ``.ci/run``
installs them) and Selenium; skipped with the reason otherwise. ``SEGUE_SCREENSHOT=docs/serve.png`` keeps the
screenshot the README shows (otherwise it goes to the test's temporary directory).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from segue.data.mpd import parse_playlists
from segue.data.store import build_store
from segue.models.base import get_model_class
from segue.serve.app import create_app
from segue.serve.service import Service

CHROMIUM = os.environ.get("SEGUE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("SEGUE_CHROMEDRIVER", "/usr/bin/chromedriver")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')")
if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
    pytest.skip(f"headless Chromium is not installed ({CHROMIUM}, {CHROMEDRIVER}); on Debian: "
                "apt-get install -y chromium chromium-driver", allow_module_level=True)

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

WAIT_S = 30  # generous: the test machine may be loaded


@pytest.fixture(scope="module")
def server(tmp_path_factory, _synth_cache):
    """A cooccur model on 300 generated playlists behind a real uvicorn on a loopback port."""
    import uvicorn

    root = tmp_path_factory.mktemp("browser")
    store = build_store(_synth_cache, root / "store")
    get_model_class("cooccur")().fit(store).save(root / "cooccur")
    service = Service.load(root / "cooccur")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    uv = uvicorn.Server(uvicorn.Config(create_app(service), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT_S
    while not uv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", store
    uv.should_exit = True
    thread.join(WAIT_S)


@pytest.fixture
def browser(tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1280,860"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    yield driver
    driver.quit()


def wait(driver, condition, message: str):
    return WebDriverWait(driver, WAIT_S).until(lambda d: condition(d), message)


def playlist_uris(driver) -> list[str]:
    return driver.execute_script("return window.segue.state.tracks.map(t => t.uri)")


def rec_uris(driver) -> list[str]:
    return driver.execute_script("return window.segue.state.recs.map(t => t.uri)")


def recs_shown(driver) -> bool:
    return (bool(driver.find_elements(By.CSS_SELECTOR, "#recs button.add"))
            and driver.find_element(By.ID, "recs").get_attribute("aria-busy") is None)


def test_build_a_playlist_in_the_browser(server, browser, tmp_path):
    url, store = server
    driver = browser
    driver.get(url + "/")
    wait(driver, lambda d: "model cooccur" in d.find_element(By.ID, "model-info").text, "model info shown")
    assert "Add a song" in driver.find_element(By.ID, "recs-status").text  # the empty state

    # search as you type; keyboard: arrow down to the second match, Enter adds it
    popular = int(store.track_count.argmax())
    artist = store.track_info([popular])[0]["artist_name"]
    search = driver.find_element(By.ID, "search")
    search.send_keys(artist.split()[0][:4].lower())
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#search-results li")) >= 2, "search results")
    assert search.get_attribute("aria-expanded") == "true"
    search.send_keys(Keys.ARROW_DOWN, Keys.ENTER)
    wait(driver, lambda d: len(playlist_uris(d)) == 1, "first song added")
    wait(driver, recs_shown, "recommendations for one song")
    first_recs = rec_uris(driver)
    assert first_recs and playlist_uris(driver)[0] not in first_recs

    # one click adds a recommendation and brings the next ones
    picked = first_recs[0]
    driver.find_element(By.CSS_SELECTOR, "#recs button.add").click()
    wait(driver, lambda d: playlist_uris(d)[-1:] == [picked], "recommendation added")
    wait(driver, lambda d: recs_shown(d) and rec_uris(d) != first_recs, "recommendations changed")
    assert picked not in rec_uris(driver)

    # keyboard only: focus is on the next recommendation's button; Enter adds it
    wait(driver, lambda d: "add" in (d.switch_to.active_element.get_attribute("class") or ""), "focus on next rec")
    before = rec_uris(driver)
    driver.switch_to.active_element.send_keys(Keys.ENTER)
    wait(driver, lambda d: len(playlist_uris(d)) == 3, "added with the keyboard")
    wait(driver, lambda d: recs_shown(d) and rec_uris(d) != before, "recommendations changed again")
    assert driver.find_elements(By.CSS_SELECTOR, "#recs .why"), "why hints are shown"

    # title, reorder, remove
    driver.find_element(By.ID, "title").send_keys("road trip")
    order = playlist_uris(driver)
    driver.find_element(By.CSS_SELECTOR, "#playlist li:first-child button[aria-label^='Move'][aria-label$='down']").click()
    wait(driver, lambda d: playlist_uris(d) == [order[1], order[0], order[2]], "moved down")
    wait(driver, recs_shown, "recommendations after the title")
    shot = Path(os.environ.get("SEGUE_SCREENSHOT") or tmp_path / "serve.png")
    shot.parent.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    driver.find_element(By.CSS_SELECTOR, "#playlist li:last-child button.remove").click()
    wait(driver, lambda d: playlist_uris(d) == [order[1], order[0]], "removed")

    # export: a playlist object segue's own MPD reader accepts
    exported = driver.execute_script("return window.segue.exportPlaylist()")
    parsed = parse_playlists([exported], "exported.json")
    assert exported["name"] == "road trip" and exported["num_tracks"] == 2
    assert [t["track_uri"] for t in exported["tracks"]] == [order[1], order[0]] and parsed.n_playlists == 1

    # start from a pid; then an unknown pid shows the API's message
    pid_box = driver.find_element(By.ID, "pid")
    pid_box.send_keys(str(int(store.pids[5])), Keys.ENTER)
    expected = [store.track_uris[i] for i in store.playlist_tracks(5)]
    wait(driver, lambda d: playlist_uris(d) == expected, "playlist loaded from its pid")
    assert driver.find_element(By.ID, "title").get_attribute("value") == store.names[5]
    pid_box.clear()
    pid_box.send_keys("99999999", Keys.ENTER)
    wait(driver, lambda d: "no playlist with pid 99999999" in d.find_element(By.ID, "pid-status").text, "pid error")

    # the playlist survives a reload (kept in localStorage)
    driver.refresh()
    wait(driver, lambda d: playlist_uris(d) == expected, "playlist restored after reload")

    # clear: back to the empty state
    driver.find_element(By.ID, "clear").click()
    wait(driver, lambda d: "Add a song" in d.find_element(By.ID, "recs-status").text, "empty state after clear")

    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and "99999999" not in e["message"]]
    assert not errors, errors  # no CSP violation or script error


def test_api_docs_render_offline(server, browser):
    url, _ = server
    browser.get(url + "/docs")
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) >= 6, "Swagger UI lists the endpoints")
