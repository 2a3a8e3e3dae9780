"""The boards in Django's admin, driven by a real Chromium while another one watches the board."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta

import httpx
import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.db.models import F
from django.test import Client

from deploy.cluster import Cluster
from tests.browser import needs_chromium, streaming
from tests.live import ROOT, Player, Server, needs_cluster
from tests.test_logos import picture

pytestmark = [pytest.mark.browser, needs_chromium]
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
PASSWORD = "a-test-only-password-7"  # a throwaway superuser in the test's own database


def superuser(env: dict[str, str], username: str) -> str:
    """Make a superuser in the database of the servers run with this env; return its name."""
    subprocess.run(
        [sys.executable, "manage.py", "createsuperuser", "--noinput", "--username", username,
         "--email", f"{username}@example.com"],
        cwd=ROOT, env={**os.environ, **env, "DJANGO_SUPERUSER_PASSWORD": PASSWORD}, check=True,
        capture_output=True,
    )  # fmt: skip
    return username


@pytest.fixture(scope="module")
def moderator(server: Server) -> str:
    return superuser(server.env, "mod")


def logged_in(browser, url: str, username: str):
    page = browser.new_context().new_page()
    page.goto(f"{url}/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_be_visible()
    return page


def act(admin, url: str, slug: str, action: str) -> None:
    admin.goto(f"{url}/admin/snake/board/?q={slug}")
    admin.check(f"input[name=_selected_action][value={slug}]")
    admin.select_option("select[name=action]", action)
    admin.click("button[name=index]")
    expect(admin.locator(".messagelist")).to_contain_text(slug)


def test_a_moderator_freezes_resets_titles_and_unfreezes_a_board_its_viewers_see_it(
    browser, server, moderator, slug
) -> None:
    with Player(server.url) as p:
        p.move(slug, "d")
    viewer = browser.new_context().new_page()
    viewer.goto(f"{server.url}/b/{slug}/")
    streaming(viewer)
    admin = logged_in(browser, server.url, moderator)
    admin.goto(f"{server.url}/admin/snake/board/?q={slug}")
    expect(admin.locator("#result_list")).to_contain_text(slug)
    expect(admin.locator("td.field-viewers")).to_have_text("1")

    act(admin, server.url, slug, "freeze")
    expect(viewer.locator("#title")).to_have_attribute("data-frozen", "true")
    expect(viewer.locator("#pad .key:disabled")).to_have_count(4)
    expect(viewer.locator(".frozen-note")).to_be_visible()
    viewer.keyboard.press("d")  # the keys still ask; the server says why nothing moves
    expect(viewer.locator("#status")).to_contain_text("This board is frozen")
    expect(viewer.locator("#logo")).to_have_attribute("data-x", "505")

    act(admin, server.url, slug, "reset")
    expect(viewer.locator("#logo")).to_have_attribute("data-x", "500")

    admin.goto(f"{server.url}/admin/snake/board/{slug}/change/")
    admin.fill("#id_title", "Our shared board")
    admin.click("input[name=_save]")
    expect(viewer.locator("#title")).to_have_text("Our shared board")

    act(admin, server.url, slug, "unfreeze")
    expect(viewer.locator("#pad .key:enabled")).to_have_count(4)
    expect(viewer.locator(".frozen-note")).to_be_hidden()
    viewer.click(".key-s")
    expect(viewer.locator("#logo")).to_have_attribute("data-y", "155")


def test_a_watched_board_is_not_deleted_and_an_unwatched_one_is(
    browser, server, moderator, slug
) -> None:
    with Player(server.url) as p:
        p.move(f"{slug[:30]}-a", "d")
        p.move(f"{slug[:30]}-b", "d")
    viewer = browser.new_context().new_page()
    viewer.goto(f"{server.url}/b/{slug[:30]}-b/")
    streaming(viewer)
    admin = logged_in(browser, server.url, moderator)
    admin.goto(f"{server.url}/admin/snake/board/?q={slug[:30]}")
    admin.check("#action-toggle")
    admin.select_option("select[name=action]", "delete_selected")
    admin.click("button[name=index]")
    admin.click("input[type=submit]")  # "Yes, I'm sure"
    expect(admin.locator(".messagelist")).to_contain_text("Not deleted, someone watches")
    with Player(server.url) as p:
        assert p.state(f"{slug[:30]}-a")["seq"] == 0  # deleted: the start again
        assert p.state(f"{slug[:30]}-b")["seq"] == 1


def test_the_admin_is_under_the_same_csp_as_the_board(server) -> None:
    admin, page = (httpx.get(f"{server.url}{path}") for path in ("/admin/login/", "/"))
    assert admin.headers["Content-Security-Policy"] == page.headers["Content-Security-Policy"]


@pytest.mark.django_db
def test_five_failed_logins_lock_that_address_and_username_for_15_minutes() -> None:

    User.objects.create_superuser("locked", "l@example.com", PASSWORD)
    here = Client(REMOTE_ADDR="192.0.2.10")

    def login(client: Client, username: str, password: str) -> int:
        form = {"username": username, "password": password, "next": "/admin/"}
        return client.post("/admin/login/", form).status_code

    assert [login(here, "locked", "wrong") for _ in range(4)] == [200] * 4  # the form again
    assert login(here, "locked", "wrong") == 429  # the fifth failure locks the pair
    assert login(here, "locked", PASSWORD) == 429  # even with the right password
    assert login(Client(REMOTE_ADDR="192.0.2.11"), "locked", PASSWORD) == 302  # another address
    assert login(here, "someone-else", "wrong") == 200  # another username from here
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=16))
    assert login(here, "locked", PASSWORD) == 302  # 15 minutes on, the lock is gone


def test_an_uploaded_logo_reaches_every_viewer_and_an_svg_is_refused(
    browser, server, moderator, slug, tmp_path
) -> None:
    with Player(server.url) as p:
        p.move(slug, "d")
    png, svg = tmp_path / "logo.png", tmp_path / "logo.svg"
    png.write_bytes(picture("PNG").getvalue())
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    viewer = browser.new_context().new_page()
    viewer.goto(f"{server.url}/b/{slug}/")
    streaming(viewer)
    admin = logged_in(browser, server.url, moderator)
    change = f"{server.url}/admin/snake/board/{slug}/change/"

    admin.goto(change)
    admin.set_input_files("#id_upload", str(svg))
    admin.click("input[name=_save]")
    expect(admin.locator(".errorlist")).to_contain_text("SVG is never taken")
    expect(viewer.locator("#title")).to_have_attribute("data-logo", "/static/snake/logo.svg")

    admin.goto(change)
    admin.set_input_files("#id_upload", str(png))
    admin.click("input[name=_save]")
    expect(viewer.locator("#title")).to_have_attribute(
        "data-logo", re.compile(r"^/logos/\w{64}\.png$")
    )
    url = viewer.locator("#title").get_attribute("data-logo")
    background = viewer.eval_on_selector("#logo", "e => getComputedStyle(e).backgroundImage")
    assert url in background
    assert httpx.get(f"{server.url}{url}").headers["Content-Type"] == "image/png"

    admin.goto(change)
    admin.check("#id_bundled")
    admin.click("input[name=_save]")
    expect(viewer.locator("#title")).to_have_attribute("data-logo", "/static/snake/logo.svg")


@needs_cluster
def test_in_the_cluster_the_admins_freeze_reaches_viewers_through_pushpin(
    browser, cluster: Cluster, slug
) -> None:
    # The admin answers from whichever worker Pushpin picks; each publishes through GRIP.
    url = cluster.url.rstrip("/")
    with Player(url) as p:
        p.move(slug, "d")
    viewer = browser.new_context().new_page()
    viewer.goto(f"{url}/b/{slug}/")
    streaming(viewer)
    admin = logged_in(browser, url, superuser(cluster.env, "clustermod"))
    act(admin, url, slug, "freeze")
    expect(viewer.locator("#title")).to_have_attribute("data-frozen", "true")
    expect(viewer.locator("#pad .key:disabled")).to_have_count(4)
    act(admin, url, slug, "reset")
    expect(viewer.locator("#logo")).to_have_attribute("data-x", "500")
    act(admin, url, slug, "unfreeze")
    expect(viewer.locator("#pad .key:disabled")).to_have_count(0)
    viewer.locator(".key-d").click()
    expect(viewer.locator("#logo")).to_have_attribute("data-x", "505")
