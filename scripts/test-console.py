#!/usr/bin/env python3
"""The web console in headless Chromium against a real `visage serve` (started by
scripts/test-console.sh, which passes the server's URL and a token).

The flow: sign in, create a collection and rename it, see a refused enrolment explained in
words, enrol obama.jpg into the collection and biden.jpg without one,
search with obama2.jpg and see Obama's name and score, search a group photo and see every
face boxed, erase Obama behind the confirmation and see the row gone, the API then says 404,
sign out and the token is gone from the tab. Throughout: no request leaves the server's
origin (Chrome's network log), the browser logs no error, nothing is kept in localStorage.
Screenshots of the main views go to --screenshots.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

# Flags that keep Chromium from talking to anything but the page's server, and that work
# as root in a container.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
]

# Face work on 2 shared cores: an enrolment or search takes well under a second alone, far
# longer when the machine is busy.
SLOW = 180


def fail(message):
    raise AssertionError(message)


class Console:
    def __init__(self, url, token, fixtures, screenshots, profile):
        self.url = url.rstrip("/")
        self.origin = urllib.parse.urlsplit(self.url)
        self.token = token
        self.fixtures = fixtures
        self.screenshots = screenshots
        options = webdriver.ChromeOptions()
        options.binary_location = find_binary("chromium", "chromium-browser")
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile}")
        options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
        service = Service(executable_path=find_binary("chromedriver"))
        self.driver = webdriver.Chrome(options=options, service=service)
        self.requests = []
        self.browser_errors = []

    def close(self):
        self.driver.quit()

    # -- helpers -------------------------------------------------------------------

    def wait(self, timeout=20):
        # The views are redrawn after each change: an element may go while it is looked at.
        return WebDriverWait(self.driver, timeout, ignored_exceptions=[StaleElementReferenceException])

    def testid(self, name, within=None):
        return (within or self.driver).find_element(By.CSS_SELECTOR, f'[data-testid="{name}"]')

    def testids(self, name, within=None):
        return (within or self.driver).find_elements(By.CSS_SELECTOR, f'[data-testid="{name}"]')

    def visible(self, name, timeout=20):
        return self.wait(timeout).until(
            ec.visibility_of_element_located((By.CSS_SELECTOR, f'[data-testid="{name}"]')))

    def go(self, view):
        self.driver.find_element(By.CSS_SELECTOR, f'#nav a[data-view="{view}"]').click()

    def no_error_shown(self, where):
        shown = [e.text for e in self.testids("error") if e.is_displayed()]
        if shown:
            fail(f"{where}: the console shows an error: {shown}")

    def wait_for(self, what, condition, timeout=20):
        """Waits for `condition`; on a timeout, says what was awaited and any error shown."""
        try:
            return self.wait(timeout).until(lambda d: condition())
        except TimeoutException:
            shown = [e.text for e in self.testids("error") if e.is_displayed()]
            fail(f"timed out waiting for {what}; errors shown: {shown}")

    def screenshot(self, name, element=None):
        if element is not None:
            self.driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", element)
        path = os.path.join(self.screenshots, name)
        if not self.driver.save_screenshot(path):
            fail(f"could not save {path}")
        print(f"test-console: screenshot {path}")

    def fixture(self, name):
        return os.path.join(self.fixtures, name)

    def person_rows(self):
        return self.testids("person-row")

    def row_of(self, name):
        for row in self.person_rows():
            if name in self.testid("person-name", row).text:
                return row
        return None

    def collect_logs(self):
        """Moves the browser's network and console logs gathered so far into self."""
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.requestWillBeSent":
                params = message["params"]
                self.requests.append((params.get("documentURL", ""), params["request"]["url"]))
        for entry in self.driver.get_log("browser"):
            if entry.get("level") == "SEVERE":
                self.browser_errors.append(entry.get("message"))

    def api(self, method, path):
        request = urllib.request.Request(
            f"{self.url}/v2/face-recognition{path}", method=method,
            headers={"Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return answer.status, json.load(answer)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    # -- the flow ------------------------------------------------------------------

    def sign_in(self):
        self.driver.get(f"{self.url}/console")
        self.visible("token").send_keys(self.token)
        self.testid("login").click()
        self.wait_for("the persons view after signing in", lambda: self.testids("no-persons"))
        stored = self.driver.execute_script("return sessionStorage.length")
        kept = self.driver.execute_script("return localStorage.length")
        if stored != 1 or kept != 0:
            fail(f"the token must live in sessionStorage only: {stored} session, {kept} local items")

    def create_collection(self, name):
        self.go("collections")
        self.visible("collection-name").send_keys(name)
        self.testid("collection-create").click()
        self.wait_for(f"the collection {name!r} listed",
                      lambda: any(name in r.text for r in self.testids("collection-row")))
        self.no_error_shown("creating a collection")

    def rename_collection(self, old, new):
        self.go("collections")
        self.wait_for(f"the collection {old!r}", lambda: any(old in r.text for r in self.testids("collection-row")))
        row = [r for r in self.testids("collection-row") if old in r.text][0]
        self.testid("rename-collection", row).click()
        field = self.visible("rename-input")
        field.clear()
        field.send_keys(new)
        self.testid("rename-save").click()
        self.wait_for(f"the collection renamed to {new!r}",
                      lambda: [r.text for r in self.testids("collection-row") if new in r.text])
        self.no_error_shown("renaming a collection")

    def refused_enrolment_is_shown_in_words(self, name, not_an_image):
        """A file the server refuses: the console says why in words, the JSON folded away."""
        self.collect_logs()
        self.go("enrol")
        self.visible("enrol-name").send_keys(name)
        self.testid("enrol-file").send_keys(not_an_image)
        self.wait_for("the file's preview", lambda: self.driver.find_elements(By.CSS_SELECTOR, ".preview"))
        self.testid("enrol-submit").click()
        shown = self.wait_for("the refusal", lambda: [e for e in self.testids("error") if e.is_displayed()], SLOW)
        words = shown[0].find_element(By.TAG_NAME, "p").text
        if not words or "{" in words or "image" not in words:
            fail(f"the refusal should be in words about the image: {words!r}")
        details = shown[0].find_element(By.TAG_NAME, "details")
        if details.get_attribute("open") is not None:
            fail("the server's JSON should be folded away under the words")
        print(f"test-console: a refused enrolment reads: {words!r}")
        # The browser logs the refused call (HTTP 412) as an error by itself; that one is
        # expected here, any other error is not.
        self.collect_logs()
        expected = [e for e in self.browser_errors if "/v2/face-recognition/persons" in e and "412" in e]
        if len(expected) != 1:
            fail(f"expected the browser to log the one refused call: {self.browser_errors}")
        self.browser_errors.remove(expected[0])

    def enrol(self, name, photo, collection=None):
        self.go("enrol")
        self.visible("enrol-name").send_keys(name)
        if collection:
            boxes = [b for b in self.testids("enrol-collection")
                     if collection in b.find_element(By.XPATH, "..").text]
            if len(boxes) != 1:
                fail(f"expected one checkbox for the collection {collection!r}, got {len(boxes)}")
            boxes[0].click()
        self.testid("enrol-file").send_keys(self.fixture(photo))
        self.wait_for("the photo preview", lambda: self.driver.find_elements(By.CSS_SELECTOR, ".preview img"))
        self.testid("enrol-submit").click()
        self.wait_for(f"the enrolment of {name}",
                      lambda: any(name in d.text for d in self.testids("enrol-done")), SLOW)

    def persons_list(self, expected, collection_of):
        self.go("persons")
        self.wait_for("the persons listed", lambda: len(self.person_rows()) == len(expected))
        for name in expected:
            row = self.row_of(name)
            if row is None:
                fail(f"{name} is not in the persons list")
            if row.find_elements(By.CSS_SELECTOR, "img.thumb") == []:
                fail(f"{name}'s row has no thumbnail")
            if collection_of.get(name) and collection_of[name] not in row.text:
                fail(f"{name}'s row does not show the collection {collection_of[name]!r}")
        self.screenshot("persons.png")

    def search(self, photo, expected_name):
        self.go("search")
        self.visible("search-file").send_keys(self.fixture(photo))
        self.testid("search-submit").click()
        self.wait_for("the search outcome", lambda: self.testids("search-outcome"), SLOW)
        self.no_error_shown("searching")
        results = self.testids("search-result")
        if not results:
            fail(f"searching with {photo} found nobody")
        first = results[0].text
        if expected_name not in first or "score 0." not in first:
            fail(f"the best match should be {expected_name} with a score: {first!r}")
        summary = self.testid("search-summary").text
        if "1 face found" not in summary or "min_score" not in summary or "searched" not in summary:
            fail(f"the summary should give the faces found, the threshold and faces_searched: {summary!r}")
        if not self.driver.find_elements(By.CSS_SELECTOR, ".photo canvas"):
            fail("the photo with its face boxed is not shown")
        print(f"test-console: {photo}: {first.splitlines()} / {summary}")
        self.screenshot("search.png", self.testid("search-outcome"))

    def search_group(self, photo, faces):
        self.go("search")
        self.visible("search-file").send_keys(self.fixture(photo))
        self.testid("search-submit").click()
        self.wait_for("the group search outcome", lambda: self.testids("search-outcome"), SLOW)
        self.no_error_shown("searching a group photo")
        summary = self.testid("search-summary").text
        if f"{faces} faces found" not in summary:
            fail(f"{photo} should show {faces} faces: {summary!r}")
        answered = self.driver.find_elements(By.CSS_SELECTOR, ".face-result")
        if len(answered) != faces:
            fail(f"{photo}: {len(answered)} face results for {faces} faces")
        self.screenshot("search-group.png", self.testid("search-outcome"))

    def erase(self, name, remaining):
        self.go("persons")
        self.wait_for(f"{name}'s row", lambda: self.row_of(name) is not None)
        row = self.row_of(name)
        link = self.testid("person-name", row).get_attribute("href")
        person_id = urllib.parse.unquote(link.split("#person/", 1)[1])
        self.testid("delete-person", row).click()
        confirm = self.visible("confirm-delete")
        dialog = self.driver.find_element(By.ID, "confirm")
        if name not in dialog.text or "erased" not in dialog.text:
            fail(f"the confirmation must say who and what is erased: {dialog.text!r}")
        self.screenshot("delete-confirmation.png")
        status, _ = self.api("GET", f"/persons/{urllib.parse.quote(person_id)}")
        if status != 200:
            fail(f"{name} should still exist before the confirmation, GET answered {status}")
        confirm.click()
        self.wait_for(f"{name}'s row to go and {remaining}'s to stay",
                      lambda: self.row_of(name) is None and self.row_of(remaining) is not None, SLOW)
        self.no_error_shown("erasing")
        status, body = self.api("GET", f"/persons/{urllib.parse.quote(person_id)}")
        if status != 404 or body.get("message") != "PERSON_NOT_FOUND":
            fail(f"after the erasure the API should answer 404 PERSON_NOT_FOUND, got {status} {body}")

    def sign_out(self):
        self.testid("sign-out").click()
        self.visible("token")
        if self.driver.execute_script("return sessionStorage.length") != 0:
            fail("signing out must forget the token")

    def check_logs(self):
        self.collect_logs()
        own = (self.origin.scheme, self.origin.netloc)
        foreign = []
        ours = 0
        for document, url in self.requests:
            parts = urllib.parse.urlsplit(url)
            from_console = urllib.parse.urlsplit(document)[:2] == own
            ours += from_console
            if parts.scheme in ("data", "blob") or (parts.scheme, parts.netloc) == own:
                continue
            # The browser's own pages (the first tab's chrome://new-tab-page) load chrome://
            # resources, which never leave the machine; anything the console loads from
            # elsewhere, and any http(s) request to another host from anywhere, fails.
            if from_console or parts.scheme in ("http", "https", "ws", "wss"):
                foreign.append(url)
        if not any(url.endswith("/console/app.js") for _, url in self.requests) or ours < 20:
            fail(f"the network log does not show the console's requests: {self.requests[:5]}")
        if foreign:
            fail(f"requests to another origin: {foreign}")
        if self.browser_errors:
            fail(f"browser console errors: {self.browser_errors}")
        print(f"test-console: {ours} requests from the console, all to {self.origin.netloc}; no console error")


def find_binary(*names):
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    sys.exit(f"test-console: none of {names} is installed (scripts/install-deps.sh installs them)")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8080")
    parser.add_argument("--fixtures", required=True, help="fixtures/faces")
    parser.add_argument("--screenshots", required=True, help="directory for the screenshots")
    args = parser.parse_args()
    token = os.environ.get("VISAGE_CONSOLE_TOKEN", "").strip()
    if not token:
        sys.exit("test-console: VISAGE_CONSOLE_TOKEN must hold a token for the server")
    os.makedirs(args.screenshots, exist_ok=True)
    # Selenium must use the Debian chromedriver given, never fetch one.
    os.environ["SE_OFFLINE"] = "true"
    with tempfile.TemporaryDirectory(prefix="visage-console-profile-") as profile:
        console = Console(args.url, token, args.fixtures, args.screenshots, profile)
        try:
            console.sign_in()
            console.create_collection("Front door")
            console.rename_collection("Front door", "Front desk")
            console.refused_enrolment_is_shown_in_words("Nobody", os.path.join(args.fixtures, "SOURCE.md"))
            console.enrol("Barack Obama", "obama.jpg", collection="Front desk")
            console.enrol("Joe Biden", "biden.jpg")
            console.persons_list(["Barack Obama", "Joe Biden"], {"Barack Obama": "Front desk"})
            console.search("obama2.jpg", "Barack Obama")
            console.search_group("t1.jpg", 6)
            console.erase("Barack Obama", remaining="Joe Biden")
            console.sign_out()
            console.check_logs()
        finally:
            console.close()
    print("test-console: the console flow passed")


if __name__ == "__main__":
    main()
