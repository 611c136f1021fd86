#!/usr/bin/env python3
"""Drives statuslab's page at `/` in headless Chromium over the Chrome DevTools Protocol.

Usage: page.py URL [--screenshot PATH]

Starts `chromium --headless --remote-debugging-port=0` with a fresh profile, opens URL, types
into the search field with real key input, clicks try-it buttons with real mouse events, sends
the panel's form, then opens the page again with JavaScript disabled. Prints what it saw as
JSON; the Rust test (tests/it/page.rs) judges it. With --screenshot, also saves a 1280x860
picture of the page after searching "42" and trying 429.
Exit status 3 means a module is missing (run scripts/test-deps.sh); 4 means chromium is
missing; 1 means the browser could not be driven.
"""

import asyncio
import json
import os
import base64
import shutil
import sys
import tempfile

try:
    try:
        from websockets.asyncio.client import connect
    except ImportError:  # websockets < 13: the legacy client has the same surface here
        from websockets.client import connect  # type: ignore
except ImportError as e:  # pragma: no cover - reported by the Rust test
    sys.stderr.write(
        f"missing Python module ({e}); install the test dependencies with scripts/test-deps.sh\n"
    )
    sys.exit(3)

TIMEOUT = 20

# Registered before the page's own script runs; CDP's script is not subject to the page's CSP.
WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline')));
"""

STATE = """(() => {
  const shown = (e) => !!e && e.getClientRects().length > 0;
  const id = (x) => document.getElementById(x);
  return {
    rows: document.querySelectorAll('tr[data-code]').length,
    visible: Array.from(document.querySelectorAll('tr[data-code]')).filter(shown)
      .map((r) => r.dataset.code),
    sections: Array.from(document.querySelectorAll('section.class')).filter(shown)
      .map((s) => s.id),
    count: id('count') ? id('count').textContent : null,
    none: shown(id('none')),
    search: shown(id('q')),
    panel: shown(id('panel')),
    buttons: Array.from(document.querySelectorAll('button[data-try]')).filter(shown).length,
    links: document.querySelectorAll('a[href^="/status/"]').length,
    csp: window.__csp || null,
  };
})()"""

PANEL = """(() => ({
  req: document.getElementById('req').textContent,
  out: document.getElementById('out').textContent,
  why: document.getElementById('why').hidden ? '' : document.getElementById('why').textContent,
}))()"""


class Browser:
    """One CDP connection to the browser, with one flattened session on a page."""

    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0
        self.pending = {}
        self.session = None
        self.exceptions = []
        self.console_errors = []

    async def read(self):
        async for raw in self.ws:
            msg = json.loads(raw)
            if "id" in msg:
                fut = self.pending.pop(msg["id"], None)
                if fut and not fut.done():
                    fut.set_result(msg)
            elif msg.get("method") == "Runtime.exceptionThrown":
                d = msg["params"]["exceptionDetails"]
                self.exceptions.append(
                    (d.get("exception") or {}).get("description") or d.get("text")
                )
            elif msg.get("method") == "Log.entryAdded":
                e = msg["params"]["entry"]
                # A status the page asked for is logged as a failed load: that is no error.
                if e.get("level") == "error" and "Failed to load resource" not in e.get("text", ""):
                    self.console_errors.append(e.get("text"))

    async def send(self, method, params=None, session=True):
        self.next_id += 1
        fut = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = fut
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        await self.ws.send(json.dumps(msg))
        reply = await asyncio.wait_for(fut, TIMEOUT)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    async def eval(self, expression):
        r = await self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression[:80]}: {r['exceptionDetails']}")
        return r["result"].get("value")

    async def until(self, expression, what):
        for _ in range(TIMEOUT * 20):
            value = await self.eval(expression)
            if value:
                return value
            await asyncio.sleep(0.05)
        raise RuntimeError(f"timed out waiting for {what}")

    async def open(self, url):
        await self.send("Page.navigate", {"url": url})
        await asyncio.sleep(0.1)
        await self.until("document.readyState === 'complete'", f"{url} to load")

    async def search(self, text):
        """Focuses the search field, selects what it holds and types `text` over it."""
        await self.eval("document.getElementById('q').focus(); document.getElementById('q').select()")
        if text:
            await self.send("Input.insertText", {"text": text})
        else:
            await self.send(
                "Input.dispatchKeyEvent",
                {"type": "keyDown", "key": "Backspace", "code": "Backspace",
                 "windowsVirtualKeyCode": 8},
            )
            await self.send(
                "Input.dispatchKeyEvent",
                {"type": "keyUp", "key": "Backspace", "code": "Backspace",
                 "windowsVirtualKeyCode": 8},
            )
        return await self.eval(STATE)

    async def click(self, selector):
        """A real mouse click in the middle of the element `selector` names."""
        box = await self.eval(
            f"""(() => {{
              const e = document.querySelector({json.dumps(selector)});
              if (!e || e.getClientRects().length === 0) return null;
              e.scrollIntoView({{block: 'center'}});
              const r = e.getBoundingClientRect();
              return {{x: r.x + r.width / 2, y: r.y + r.height / 2}};
            }})()"""
        )
        if not box:
            raise RuntimeError(f"{selector} is not on screen")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            await self.send(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": box["x"], "y": box["y"], "button": "left", "clickCount": 1},
            )

    async def try_code(self, selector):
        """Clicks `selector` and waits for the panel to show an answer or an explanation."""
        await self.eval("document.getElementById('out').textContent = ''")
        await self.click(selector)
        await self.until(
            "(() => { const o = document.getElementById('out').textContent;"
            " return /^(HTTP\\/1\\.1|fetch\\(\\) failed)/.test(o)"
            " || !document.getElementById('why').hidden; })()",
            f"the panel to answer {selector}",
        )
        return await self.eval(PANEL)


async def launch():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        sys.stderr.write("chromium is missing: install it with scripts/test-deps.sh\n")
        sys.exit(4)
    profile = tempfile.mkdtemp(prefix="statuslab-page-")
    proc = await asyncio.create_subprocess_exec(
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-extensions", "--disable-background-networking",
        f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    seen = []
    while True:
        line = await asyncio.wait_for(proc.stderr.readline(), TIMEOUT)
        if not line:
            raise RuntimeError("chromium exited before listening:\n" + "".join(seen))
        text = line.decode(errors="replace")
        seen.append(text)
        if "DevTools listening on " in text:
            ws_url = text.split("DevTools listening on ", 1)[1].strip()
            break

    async def drain():
        while await proc.stderr.readline():
            pass

    return proc, profile, ws_url, asyncio.create_task(drain())


async def page_session(browser, scripts=True):
    target = await browser.send("Target.createTarget", {"url": "about:blank"}, session=False)
    attached = await browser.send(
        "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}, session=False
    )
    browser.session = attached["sessionId"]
    for domain in ("Page", "Runtime", "Log"):
        await browser.send(f"{domain}.enable")
    await browser.send("Emulation.setDeviceMetricsOverride",
                       {"width": 1280, "height": 860, "deviceScaleFactor": 1, "mobile": False})
    if scripts:
        await browser.send("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH})
    else:
        await browser.send("Emulation.setScriptExecutionDisabled", {"value": True})


async def drive(url, screenshot):
    proc, profile, ws_url, drain = await launch()
    result = {}
    try:
        async with connect(ws_url, max_size=None, open_timeout=TIMEOUT) as ws:
            browser = Browser(ws)
            reader = asyncio.create_task(browser.read())

            await page_session(browser)
            await browser.open(url)
            result["initial"] = await browser.eval(STATE)
            result["search_429"] = await browser.search("429")
            result["try_429"] = await browser.try_code("#c429 button[data-try]")
            result["search_42"] = await browser.search("42")
            result["search_gateway"] = await browser.search("gateway")
            result["search_two_words"] = await browser.search("Too LARGE")
            result["search_4xx_words"] = await browser.search("4xx request")
            result["search_nothing"] = await browser.search("zzzz")
            result["search_cleared"] = await browser.search("")
            await browser.search("100")
            result["try_100"] = await browser.try_code("#c100 button[data-try]")
            await browser.search("101")
            result["try_101"] = await browser.try_code("#c101 button[data-try]")
            for code in (301, 204, 304, 401, 407):
                await browser.search(str(code))
                result[f"try_{code}"] = await browser.try_code(f"#c{code} button[data-try]")
            # The panel's own form: another code, options set, Send.
            await browser.eval(
                """(() => {
                  const set = (id, v) => { const e = document.getElementById(id); e.value = v;
                    e.dispatchEvent(new Event('change', {bubbles: true})); };
                  set('code', '503'); set('accept', 'application/problem+json');
                  set('retry_after', '7'); set('sleep', '50ms'); set('method', 'GET');
                })()"""
            )
            result["send_503"] = await browser.try_code("#opts button[type=submit]")
            await browser.eval(
                "document.getElementById('method').value = 'HEAD';"
                "document.getElementById('retry_after').value = '';"
                "document.getElementById('sleep').value = '';"
                "document.getElementById('code').value = '404';"
            )
            result["send_head_404"] = await browser.try_code("#opts button[type=submit]")
            result["after"] = await browser.eval(STATE)

            if screenshot:
                await browser.open(url)
                await browser.search("42")
                await browser.eval("document.getElementById('accept').value = 'application/problem+json'")
                await browser.try_code("#c429 button[data-try]")
                await browser.eval("window.scrollTo(0, 0)")
                await asyncio.sleep(0.2)
                shot = await browser.send("Page.captureScreenshot", {"format": "png"})
                with open(screenshot, "wb") as f:
                    f.write(base64.b64decode(shot["data"]))
                result["screenshot"] = screenshot

            result["exceptions"] = list(browser.exceptions)
            result["console_errors"] = list(browser.console_errors)

            # The same page with JavaScript disabled.
            await page_session(browser, scripts=False)
            await browser.open(url)
            result["no_js"] = await browser.eval(STATE)
            result["no_js_scripts_ran"] = await browser.eval(
                "!document.getElementById('tools').hidden"
            )
            reader.cancel()
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
        drain.cancel()
        shutil.rmtree(profile, ignore_errors=True)
    return result


def main():
    args = sys.argv[1:]
    screenshot = None
    if "--screenshot" in args:
        i = args.index("--screenshot")
        screenshot = os.path.abspath(args[i + 1])
        del args[i : i + 2]
    if len(args) != 1:
        sys.stderr.write(__doc__)
        sys.exit(2)
    try:
        result = asyncio.run(drive(args[0], screenshot))
    except Exception as e:  # reported with the Rust test's failure
        sys.stderr.write(f"could not drive chromium: {type(e).__name__}: {e}\n")
        sys.exit(1)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
