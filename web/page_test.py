#!/usr/bin/env python3
"""The page in a real browser: serves the repository, opens web/?autostart in headless Chromium
through chromedriver's WebDriver API (plain HTTP, no client library), and passes when the page
has trained 10 steps (PAGE_STEPS=N: N, for a screenshot worth looking at) and drawn a sample grid
with no error on the page or in the console.
Writes a screenshot to target/page.png (or the path given as the first argument).

    DEBUG_BUILD=1 BUILD_ONLY=1 bash web/serve.sh && python3 web/page_test.py
"""
import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as response:
        return json.loads(response.read())["value"]


def wait_for(what, check, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(1)
    raise SystemExit(f"page test: {what} did not happen within {seconds} s")


def main():
    shot = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "page.png")
    if not os.path.exists(os.path.join(HERE, "pkg", "shadergan_web.js")):
        raise SystemExit("page test: web/pkg is missing; build it first: DEBUG_BUILD=1 BUILD_ONLY=1 bash web/serve.sh")
    with open(os.path.join(HERE, "webdriver.json")) as f:
        chrome = json.load(f)["goog:chromeOptions"]
    web_port, driver_port = free_port(), free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(web_port), "--bind", "127.0.0.1"], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    driver = subprocess.Popen([os.environ.get("CHROMEDRIVER", "chromedriver"), f"--port={driver_port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{driver_port}"
    session = None
    try:
        wait_for("chromedriver start", lambda: _answers(base + "/status"), 30)
        caps = {"browserName": "chrome", "goog:chromeOptions": chrome, "goog:loggingPrefs": {"browser": "ALL"}}
        session = call(base, "POST", "/session", {"capabilities": {"alwaysMatch": caps}})["sessionId"]
        s = f"/session/{session}"
        call(base, "POST", s + "/window/rect", {"width": 1100, "height": 760})
        call(base, "POST", s + "/url", {"url": f"http://127.0.0.1:{web_port}/web/?autostart"})
        script = lambda js: call(base, "POST", s + "/execute/sync", {"script": js, "args": []})
        error = lambda: script("const e = document.getElementById('status'); return e.className === 'error' ? e.textContent : null;")

        steps = int(os.environ.get("PAGE_STEPS", "10"))

        def trained():
            if error():
                raise SystemExit(f"page test: the page shows an error: {error()}")
            title = script("return document.title;")
            return title.startswith("shadergan: step ") and int(title.split()[-1]) >= steps

        wait_for(f"{steps} training steps", trained, max(300, 10 * steps))
        wait_for("a sample grid", lambda: script("return document.getElementById('samples').naturalWidth;") > 0, 60)
        status = script("return document.getElementById('status').textContent;")
        speed = script("return document.getElementById('speed').textContent;")
        with open(shot, "wb") as f:
            f.write(base64.b64decode(call(base, "GET", s + "/screenshot")))
        logs = call(base, "POST", s + "/se/log", {"type": "browser"})
        severe = [entry["message"] for entry in logs if entry.get("level") == "SEVERE"]
        if severe:
            raise SystemExit("page test: console errors:\n" + "\n".join(severe))
        print(f"page test: ok: {status} {speed}; screenshot {shot}")
    finally:
        if session:
            try:
                call(base, "DELETE", f"/session/{session}")
            except OSError:
                pass
        driver.terminate()
        server.terminate()


def _answers(url):
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


if __name__ == "__main__":
    main()
