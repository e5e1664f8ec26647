"""The admin console in a real browser (headless Chromium through Selenium): log in with the
generated password, enrol TOTP with a code computed here (RFC 6238), open every page, act through
the forms, save screenshots, and fail on any browser console error."""

import os
import pathlib
import re
import shutil
import time

import pytest

from admin_helpers import start_console, totp
from mqttclient import Client

pytestmark = pytest.mark.bastion_only

PAGES = ["overview", "clients", "sessions", "subscriptions", "retained", "acl", "bans", "audit", "users"]


def chromium():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is missing: pip install selenium (scripts/test installs it)")
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    binary = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(driver_path) or not os.path.exists(binary):
        pytest.fail("chromium is missing: apt-get install -y chromium chromium-driver (scripts/test installs it)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900",
                 "--no-first-run", "--disable-extensions", "--disable-background-networking", "--disable-sync",
                 "--disable-component-update", "--disable-default-apps", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]:
        options.add_argument(flag)
    # The development CA is not in the browser's store; the console's TLS is checked elsewhere.
    options.set_capability("acceptInsecureCerts", True)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver_path), options=options)


@pytest.fixture
def browser():
    driver = chromium()
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


def console_errors(driver):
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def test_browser_login_enrol_every_page(broker_factory, browser, tmp_path):
    from selenium.webdriver.common.by import By

    acl = tmp_path / "acl"
    acl.write_text("# anonymous clients\ntopic readwrite plant/#\n\nuser operator\ntopic read $SYS/#\n")
    broker, admin = start_console(broker_factory, config={"auth": {"acl_file": str(acl)}})
    # Something to show.
    sub = Client(broker, client_id="plc-17")
    sub.subscribe("plant/+/temp", qos=1)
    sub.subscribe("plant/line1/#", qos=0)
    pub = Client(broker, client_id="line-1")
    pub.publish("plant/line1/status", b"running", qos=1, retain=True)

    password = admin.initial_password
    base = f"https://127.0.0.1:{admin.port}"
    shots = tmp_path / "screenshots"
    shots.mkdir()

    from selenium.webdriver.support.ui import WebDriverWait

    def until(condition, what):
        """Clicks return before the next page has loaded: wait (bounded) for what it should show."""
        WebDriverWait(browser, 15).until(lambda d: condition(d), message=what)

    def shot(name):
        browser.save_screenshot(str(shots / f"{name}.png"))
        errors = console_errors(browser)
        assert errors == [], f"{name}: {errors}"

    browser.get(base + "/")
    assert "/login" in browser.current_url
    shot("login")
    browser.find_element(By.NAME, "username").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys(password)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    until(lambda d: d.current_url.endswith("/login/enrol"), "the enrolment page")
    assert browser.find_element(By.CSS_SELECTOR, ".qr svg")
    shot("enrol-totp")
    secret = browser.find_element(By.ID, "totp-secret").text
    browser.find_element(By.NAME, "code").send_keys(totp(secret))
    browser.find_element(By.CSS_SELECTOR, "form[action='/login/enrol'] button").click()
    until(lambda d: d.current_url.endswith("/ui/overview"), "the overview after enrolment")

    cookie = browser.get_cookie("bastion_session")
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"

    for page in PAGES:
        browser.get(f"{base}/ui/{page}")
        assert browser.find_element(By.TAG_NAME, "h1").text, page
        assert "/login" not in browser.current_url, page
        shot(page)

    # Act through the forms: ban an address, check the ACL, kick a client.
    browser.get(base + "/ui/bans")
    browser.find_element(By.NAME, "value").send_keys("198.51.100.7")
    browser.find_element(By.NAME, "reason").send_keys("scanner")
    browser.find_element(By.CSS_SELECTOR, "form[action='/ui/bans/add'] button").click()
    until(lambda d: "msg=banned" in d.current_url, "the bans page after adding")
    assert "198.51.100.7" in browser.page_source
    shot("bans-after-add")
    browser.get(base + "/ui/acl?topic=plant/line1/temp&action=subscribe&client_id=plc-17")
    assert "Allowed" in browser.find_element(By.ID, "acl-result").text
    shot("acl-check")
    browser.get(base + "/ui/clients")
    browser.find_element(By.CSS_SELECTOR, "form[action='/ui/clients/kick'] button").click()
    until(lambda d: "msg=" in d.current_url, "the clients page after kicking")
    assert "was disconnected" in browser.page_source
    shot("clients-after-kick")

    # Log out; the pages need a login again.
    browser.find_element(By.CSS_SELECTOR, "form.logout button").click()
    until(lambda d: "/login" in d.current_url, "the login page after logging out")
    browser.get(base + "/ui/overview")
    assert "/login" in browser.current_url

    # The first password file is gone once TOTP is set up; the password still works, with a code.
    assert not (broker.data_dir / "admin-password").exists()
    browser.find_element(By.NAME, "username").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys(password)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    until(lambda d: d.current_url.endswith("/login/code"), "the code page")
    shot("code")
    # The enrolment used this step's code, and a code works once: the next step's is accepted.
    browser.find_element(By.NAME, "code").send_keys(totp(secret, at=time.time() + 30))
    browser.find_element(By.CSS_SELECTOR, "form[action='/login/code'] button").click()
    until(lambda d: d.current_url.endswith("/ui/overview"), "the overview after the code")

    docs = os.environ.get("BASTION_SCREENSHOTS")
    if docs:
        target = pathlib.Path(docs)
        target.mkdir(parents=True, exist_ok=True)
        for name in ["login", "enrol-totp", "overview", "clients", "subscriptions", "acl-check", "bans-after-add", "audit", "users"]:
            shutil.copy(shots / f"{name}.png", target / f"{name}.png")
