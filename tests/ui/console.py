"""The Brokkr web console in a real browser (chromium, driven by Playwright).

Run by tests/ui/console.rs against a seeded broker; every check raises on failure, and the
last line printed is "every check passed". Screenshots of the main views are written to
$SCREENSHOTS.
"""

import json
import os
import pathlib
import urllib.request

from playwright.sync_api import expect, sync_playwright

URL = os.environ["BROKKR_URL"]
ADMIN = os.environ["ADMIN_PAK"]
PAYMENTS = os.environ["PAYMENTS_PAK"]
API_STACK = os.environ["API_STACK"]
INDEX_STACK = os.environ["INDEX_STACK"]
SEARCH_AGENT_ID = os.environ["SEARCH_AGENT_ID"]
SEARCH_AGENT_PAK = os.environ["SEARCH_AGENT_PAK"]
INDEX_OBJECT = os.environ["INDEX_OBJECT"]
SHOTS = pathlib.Path(os.environ["SCREENSHOTS"])
SHOTS.mkdir(parents=True, exist_ok=True)


def api_post(path, pak, body=None):
    headers = {"Authorization": "Bearer " + pak, "Content-Type": "application/json"}
    data = json.dumps(body).encode() if body is not None else b""
    request = urllib.request.Request(URL + path, method="POST", data=data, headers=headers)
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def sign_in(page, pak):
    page.goto(URL + "/ui/fleet")
    expect(page).to_have_url(URL + "/ui/login")
    page.get_by_label("PAK").fill(pak)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(URL + "/ui/fleet")


def sign_out(page):
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(URL + "/ui/login")
    page.goto(URL + "/ui/fleet")
    expect(page).to_have_url(URL + "/ui/login")


def admin_views(page):
    page.goto(URL + "/ui/fleet")
    sign_in(page, ADMIN)
    for agent in ("payments-eu", "payments-us", "search-eu"):
        expect(page.get_by_role("rowheader", name=agent)).to_be_visible()
    assert page.evaluate("document.cookie") == "", "the session cookie is HttpOnly"
    assert page.evaluate("localStorage.length + sessionStorage.length") == 0
    page.screenshot(path=SHOTS / "fleet.png", full_page=True)

    page.get_by_label("CEL expression").fill('"search" in agent.labels')
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("rowheader", name="search-eu")).to_be_visible()
    expect(page.get_by_role("rowheader", name="payments-eu")).to_have_count(0)

    page.get_by_role("link", name="Stacks").click()
    expect(page.get_by_role("link", name="api")).to_be_visible()
    expect(page.get_by_role("link", name="index")).to_be_visible()
    page.screenshot(path=SHOTS / "stacks.png", full_page=True)

    page.get_by_role("link", name="Fleet").click()
    page.get_by_role("link", name="payments-eu").click()
    expect(page.get_by_role("heading", name="Agent payments-eu")).to_be_visible()
    expect(page.get_by_role("rowheader", name="api")).to_be_visible()
    page.screenshot(path=SHOTS / "agent.png", full_page=True)

    page.get_by_role("link", name="Work orders").click()
    expect(page.get_by_role("cell", name="restart")).to_be_visible()
    page.screenshot(path=SHOTS / "work-orders.png", full_page=True)

    page.get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("rowheader", name="stack.created").first).to_be_visible()
    page.get_by_label("Action").fill("agent.*")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("rowheader", name="stack.created")).to_have_count(0)
    page.screenshot(path=SHOTS / "audit.png", full_page=True)

    for section, empty in (("Plugins", "No plugin installed"), ("Webhooks", "No subscription yet")):
        page.get_by_role("link", name=section).click()
        expect(page.locator("main")).to_contain_text(empty)
    live_fleet(page)
    retarget_with_preview(page)
    sign_out(page)


def live_fleet(page):
    """An agent reports a failed apply: the fleet table shows it without a reload."""
    page.goto(URL + "/ui/fleet")
    row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name="search-eu"))
    expect(row).not_to_contain_text("quota exceeded")
    page.evaluate("window.notReloaded = true")
    report = {
        "idempotency_key": "console-live-fleet",
        "deployment_object_id": INDEX_OBJECT,
        "event_type": "apply",
        "status": "failure",
        "message": "quota exceeded",
    }
    api_post("/api/v1/agents/" + SEARCH_AGENT_ID + "/events", SEARCH_AGENT_PAK, report)
    expect(row).to_contain_text("quota exceeded", timeout=15000)
    assert page.evaluate("window.notReloaded === true"), "the page was not reloaded"


def retarget_with_preview(page):
    """A retarget shows who would gain and lose the stack, and changes nothing until confirmed."""
    page.goto(URL + "/ui/stacks/" + INDEX_STACK)
    page.get_by_text("Retarget", exact=True).click()
    page.get_by_label("CEL expression").fill("false")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_role("heading", name="Agents that would lose it (1)")).to_be_visible()
    expect(page.get_by_role("link", name="search-eu")).to_be_visible()
    page.screenshot(path=SHOTS / "retarget-preview.png", full_page=True)
    page.get_by_role("link", name="Cancel").click()
    expect(page.get_by_role("link", name="search-eu")).to_be_visible()
    page.get_by_text("Retarget", exact=True).click()
    page.get_by_label("CEL expression").fill("false")
    page.get_by_role("button", name="Preview").click()
    page.get_by_role("button", name="Confirm and retarget").click()
    expect(page.get_by_role("status")).to_contain_text("retargeted")
    expect(page.locator("main")).to_contain_text("It reaches no agent.")


def live_rollout_and_csrf(page):
    sign_in(page, PAYMENTS)
    page.goto(URL + "/ui/stacks/" + API_STACK)
    rollout = page.locator("#rollout")
    expect(rollout).to_contain_text("Staged rollout: progressing")
    page.evaluate("window.notReloaded = true")
    page.screenshot(path=SHOTS / "stack.png", full_page=True)

    # Someone pauses it through the API: the page shows it without a reload.
    api_post("/api/v1/stacks/" + API_STACK + "/rollout/pause", PAYMENTS)
    expect(rollout).to_contain_text("Staged rollout: paused", timeout=15000)
    assert page.evaluate("window.notReloaded === true"), "the page was not reloaded"

    # A form whose token was tampered with is refused.
    form = page.locator("form[action$='/rollout/resume']")
    form.locator("input[name=csrf]").evaluate("input => input.value = 'forged'")
    form.get_by_role("button").click()
    expect(page.get_by_role("heading", name="Refused")).to_be_visible()

    # The real token works.
    page.goto(URL + "/ui/stacks/" + API_STACK)
    page.get_by_role("button", name="Resume").click()
    expect(page.get_by_role("status")).to_contain_text("resumed")
    expect(page.locator("#rollout")).to_contain_text("Staged rollout: progressing")

    # Two versions side by side.
    page.get_by_role("link", name="Compare versions").click()
    expect(page.get_by_role("rowheader", name="data.v")).to_be_visible()
    expect(page.locator("main")).to_contain_text('"2"')
    page.screenshot(path=SHOTS / "diff.png", full_page=True)


def generator_is_confined(page):
    page.goto(URL + "/ui/fleet")
    expect(page.get_by_role("rowheader", name="payments-eu")).to_be_visible()
    expect(page.get_by_role("rowheader", name="search-eu")).to_have_count(0)
    page.goto(URL + "/ui/stacks")
    expect(page.get_by_role("link", name="index")).to_have_count(0)
    response = page.goto(URL + "/ui/stacks/" + INDEX_STACK)
    assert response.status == 404, response.status
    expect(page.get_by_role("heading", name="Not Found")).to_be_visible()
    expect(page.locator("main")).not_to_contain_text("index")


def keyboard_and_narrow(page):
    page.goto(URL + "/ui/fleet")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused == "Skip to content", focused
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(URL + "/ui/fleet")
    expect(page.get_by_role("rowheader", name="payments-eu")).to_be_visible()
    page.screenshot(path=SHOTS / "fleet-narrow.png", full_page=True)
    sign_out(page)


def main():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"]
        )
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.set_default_timeout(10000)
        page.goto(URL + "/ui/login")
        page.screenshot(path=SHOTS / "login.png")
        admin_views(page)
        live_rollout_and_csrf(page)
        generator_is_confined(page)
        keyboard_and_narrow(page)
        browser.close()
    print("every check passed")


if __name__ == "__main__":
    main()
