#!/usr/bin/env python3
"""The page in a real browser: serves the repository, opens each game of web/ in headless Chromium
through chromedriver's WebDriver API (plain HTTP, no client library), and passes when each game
has trained and drawn: the 1-D game and the 2-D mixture 20 steps (PAGE_SMALL_STEPS=N: N), the
DCGAN 10 steps (PAGE_STEPS=N: N, for a screenshot worth looking at) and a sample grid; and when
its checkpoints and the CLI's go both ways (the page's download is sampled by `shadergan sample`;
a `shadergan train` run's model.safetensors opens in the page, a file that is not one gets a
message), with no other error on the page or in the console.
Writes screenshots to target/page.png (or the path given as the first argument) and, for each
game, page-<game>.png beside it.

    DEBUG_BUILD=1 BUILD_ONLY=1 bash web/serve.sh && python3 web/page_test.py
"""
import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
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
        script = lambda js: call(base, "POST", s + "/execute/sync", {"script": js, "args": []})
        error = lambda: script("const e = document.getElementById('status'); return e.className === 'error' ? e.textContent : null;")
        text = lambda element: script(f"return document.getElementById('{element}').textContent;")
        dcgan_steps = int(os.environ.get("PAGE_STEPS", "10"))
        # Each game: trained a few steps, its picture drawn, with the figures it shows.
        drawn = {
            "toy": ("the densities and θ", "return document.getElementById('figures').textContent.startsWith('θ = ');"),
            "mixture": ("the points and the mode count",
                        "return document.getElementById('figures').textContent.startsWith('modes covered: ');"),
            "dcgan": ("a sample grid", "return document.getElementById('samples').naturalWidth > 0;"),
        }
        small_steps = int(os.environ.get("PAGE_SMALL_STEPS", "20"))
        for game, steps in [("toy", small_steps), ("mixture", small_steps), ("dcgan", dcgan_steps)]:
            call(base, "POST", s + "/url", {"url": f"http://127.0.0.1:{web_port}/web/?game={game}&autostart"})

            def trained():
                if error():
                    raise SystemExit(f"page test: {game}: the page shows an error: {error()}")
                title = script("return document.title;")
                return title.startswith("shadergan: step ") and int(title.split()[-1]) >= steps

            wait_for(f"{game}: {steps} training steps", trained, max(300, 10 * steps))
            wait_for(f"{game}: {drawn[game][0]}", lambda: script(drawn[game][1]), 60)
            print(f"page test: {game}: {text('status')} {text('speed')}; {text('figures')}")
            game_shot = os.path.join(os.path.dirname(shot), f"page-{game}.png")
            with open(game_shot, "wb") as f:
                f.write(base64.b64decode(call(base, "GET", s + "/screenshot")))
        checkpoints_both_ways(base, s, script)
        script("document.getElementById('open').scrollIntoView();")
        with open(shot, "wb") as f:
            f.write(base64.b64decode(call(base, "GET", s + "/screenshot")))
        logs = call(base, "POST", s + "/se/log", {"type": "browser"})
        severe = [entry["message"] for entry in logs if entry.get("level") == "SEVERE"]
        if severe:
            raise SystemExit("page test: console errors:\n" + "\n".join(severe))
        print(f"page test: ok; screenshots beside {shot}")
    finally:
        if session:
            try:
                call(base, "DELETE", f"/session/{session}")
            except OSError:
                pass
        driver.terminate()
        server.terminate()


def shadergan_cli():
    """The CLI as the tests built it (cargo test builds it first in CI), built if missing."""
    subprocess.run(["cargo", "build", "--quiet", "--bin", "shadergan"], cwd=ROOT, check=True)
    return os.path.join(ROOT, "target", "debug", "shadergan")


def cli(*args):
    run = subprocess.run([shadergan_cli(), *args], cwd=ROOT, capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"page test: shadergan {' '.join(args)} failed:\n{run.stdout}{run.stderr}")


def checkpoints_both_ways(base, s, script):
    work = tempfile.mkdtemp(prefix="shadergan-page-")
    # The page's download, where the browser puts it, sampled by the CLI.
    call(base, "POST", s + "/goog/cdp/execute",
         {"cmd": "Browser.setDownloadBehavior", "params": {"behavior": "allow", "downloadPath": work}})
    script("document.getElementById('download').click();")
    downloaded = os.path.join(work, "model.safetensors")
    wait_for("the download of model.safetensors", lambda: os.path.exists(downloaded), 120)
    cli("sample", "--checkpoint", downloaded, "--out", os.path.join(work, "from-page"), "--n", "16")
    if not os.path.exists(os.path.join(work, "from-page", "grid.png")):
        raise SystemExit("page test: shadergan sample wrote no grid.png from the page's checkpoint")

    # A CLI run's checkpoint opened in the page, and a file that is not a checkpoint.
    run = os.path.join(work, "cli-run")
    cli("train", "--config", "tests/fixtures/tiny-dcgan.toml", "--steps", "2", "--out", run, "--quiet")
    opener = call(base, "POST", s + "/element", {"using": "css selector", "value": "#open"})
    element = next(iter(opener.values()))
    open_status = lambda: script("const e = document.getElementById('open-status'); return [e.className, e.textContent];")
    call(base, "POST", f"{s}/element/{element}/value", {"text": os.path.join(run, "model.safetensors")})
    opened = wait_for("the CLI's checkpoint opened", lambda: (lambda st: st if "16x16" in st[1] or st[0] else None)(open_status()), 120)
    if opened[0] == "error":
        raise SystemExit(f"page test: the CLI's checkpoint did not open: {opened[1]}")
    drawn = "return ['opened-samples', 'opened-walks'].every(id => document.getElementById(id).naturalWidth > 0);"
    wait_for("the opened checkpoint's samples and walks", lambda: script(drawn), 60)
    call(base, "POST", f"{s}/element/{element}/value", {"text": os.path.join(ROOT, "tests", "fixtures", "tiny-dcgan.toml")})
    refused = wait_for("a message for a file that is no checkpoint", lambda: (lambda st: st if st[0] == "error" else None)(open_status()), 60)
    if "tiny-dcgan.toml" not in refused[1] or "not a valid safetensors file" not in refused[1]:
        raise SystemExit(f"page test: the message for a config file opened as a checkpoint: {refused[1]}")
    print(f"page test: checkpoints go both ways; a config file opened as a checkpoint reads: {refused[1]}")


def _answers(url):
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


if __name__ == "__main__":
    main()
