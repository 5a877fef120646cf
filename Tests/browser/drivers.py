"""Two small browser drivers with one interface, so the same page test runs in Chromium and Firefox:
Chromium through the DevTools protocol (CDP), Firefox through WebDriver BiDi. Both over one websocket
(websocket-client from PyPI); both real input events (mouse, wheel, keys), not synthetic DOM events.
"""
import base64, json, os, shutil, subprocess, tempfile, time

import websocket  # websocket-client


class Failure(Exception):
    pass


class Browser:
    """What the page test needs from a browser. Subclasses implement the protocol-specific part."""

    name = "browser"

    def __init__(self):
        self.procs = []
        self.profile = tempfile.mkdtemp(prefix=f"mg-{self.name}-")
        self.ws = None
        self.next_id = 0
        self.events = []

    # --- the websocket: one request at a time, events kept for later ---
    def _send(self, msg, is_reply, timeout):
        self.next_id += 1
        msg["id"] = self.next_id
        self.ws.send(json.dumps(msg))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.next_id:
                return reply
            self.events.append(reply)
        raise Failure(f"{msg.get('method')}: no reply in {timeout}s")

    def drain(self):
        self.ws.settimeout(0.05)
        for _ in range(1000):
            try:
                self.events.append(json.loads(self.ws.recv()))
            except (websocket.WebSocketTimeoutException, TimeoutError):
                break

    def _launch(self, cmd, marker, timeout=60):
        """Starts the browser and returns the websocket URL it prints on stderr after `marker`."""
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.procs.append(p)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = p.stderr.readline()
            if not line:
                if p.poll() is not None:
                    raise Failure(f"{self.name} exited with {p.returncode}")
                continue
            if marker in line:
                # Keep reading stderr in the background so a chatty browser never blocks on a full pipe.
                self.procs.append(subprocess.Popen(["cat"], stdin=p.stderr, stdout=subprocess.DEVNULL))
                return line.split(marker, 1)[1].strip()
        raise Failure(f"{self.name} did not open its remote protocol in {timeout}s")

    def close(self):
        try:
            self._close_browser()
        except Exception:
            pass
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(self.profile, ignore_errors=True)

    # --- helpers built on the primitives ---
    def wait(self, expression, what, timeout=15, diagnose=None):
        """Polls `expression` until it is truthy; on a timeout, the failure carries `diagnose`'s value too."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.js(expression)
            if last:
                return last
            time.sleep(0.05)
        seen = f"; the page showed {self.js(diagnose)!r}" if diagnose else ""
        raise Failure(f"timed out waiting for {what} ({expression}); last value {last!r}{seen}")

    def center(self, selector):
        r = self.js(f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
            if (!e) return null; e.scrollIntoView({{block: 'center', inline: 'center'}});
            const b = e.getBoundingClientRect(); return [b.left + b.width / 2, b.top + b.height / 2, b.width, b.height]; }})()""")
        if not r:
            raise Failure(f"no element {selector}")
        return r

    def click(self, selector):
        x, y, _, _ = self.center(selector)
        self.move(x, y)
        self.down(x, y)
        self.up(x, y)

    def type(self, selector, text):
        """Focuses a field by clicking it, selects what is there and types over it, key by key."""
        self.click(selector)
        self.js(f"document.querySelector({json.dumps(selector)}).select()")
        self.press("Delete")
        self.type_chars(text)

    def paste(self, selector, text):
        """Replaces a field's text in one edit, as pasting does (graph JSON is pasted, not typed)."""
        self.click(selector)
        self.js(f"document.querySelector({json.dumps(selector)}).select()")
        self.insert_text(text)

    def save_screenshot(self, path, full_page=False):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "wb") as f:
            f.write(self.full_page_png() if full_page else self.screenshot_png())
        return path

    # Runs in every new document before the page's own scripts, in the page's world: records CSP violations,
    # which the page would otherwise only report to the console (and Firefox's BiDi log does not carry them).
    CSP_WATCH = ("window.__cspViolations = [];"
                 "document.addEventListener('securitypolicyviolation', e =>"
                 " window.__cspViolations.push(e.violatedDirective + ' ' + (e.blockedURI || '') + ' ' + (e.sample || '')));")


class Chromium(Browser):
    name = "chromium"
    KEYS = {"Enter": ("Enter", 13, "\r"), "Tab": ("Tab", 9, None), "Delete": ("Delete", 46, None),
            "ArrowRight": ("ArrowRight", 39, None), "0": ("Digit0", 48, "0"), "n": ("KeyN", 78, "n"), "p": ("KeyP", 80, "p")}

    def __init__(self, exe=None):
        super().__init__()
        exe = exe or next((shutil.which(c) for c in ("chromium", "chromium-browser", "google-chrome") if shutil.which(c)), None)
        if not exe:
            raise Failure("no chromium: apt-get install -y chromium")
        url = self._launch([exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                            "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
                            "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
                            f"--user-data-dir={self.profile}", "--window-size=1280,1000", "about:blank"],
                           "DevTools listening on")
        self.ws = websocket.create_connection(url, timeout=30, suppress_origin=True)
        self.session = None
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")
        self.call("Page.addScriptToEvaluateOnNewDocument", {"source": self.CSP_WATCH})

    def call(self, method, params=None, timeout=30):
        msg = {"method": method, "params": params or {}}
        if self.session:
            msg["sessionId"] = self.session
        reply = self._send(msg, None, timeout)
        if "error" in reply:
            raise Failure(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def _close_browser(self):
        self.session = None
        self.call("Browser.close", timeout=5)

    def navigate(self, url):
        self.call("Page.navigate", {"url": url})

    def js(self, expression, await_promise=False):
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": await_promise})
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise Failure(f"JS error in {expression[:80]!r}: {d.get('exception', {}).get('description', d)}")
        return r.get("result", {}).get("value")

    def _mouse(self, kind, x, y, **extra):
        self.call("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, **extra})

    def move(self, x, y, pressed=False):
        self._mouse("mouseMoved", x, y, **({"button": "left", "buttons": 1} if pressed else {}))

    def down(self, x, y):
        self._mouse("mousePressed", x, y, button="left", buttons=1, clickCount=1)

    def up(self, x, y):
        self._mouse("mouseReleased", x, y, button="left", buttons=0, clickCount=1)

    def wheel(self, x, y, dy):
        self._mouse("mouseWheel", x, y, deltaX=0, deltaY=dy)

    def press(self, key, ctrl=False):
        code, vk, text = self.KEYS[key]
        base = {"key": key, "code": code, "windowsVirtualKeyCode": vk, "nativeVirtualKeyCode": vk, "modifiers": 2 if ctrl else 0}
        down = dict(base, type="keyDown")
        if text is not None:
            down.update(text=text, unmodifiedText=text)
        self.call("Input.dispatchKeyEvent", down)
        self.call("Input.dispatchKeyEvent", dict(base, type="keyUp"))

    def type_chars(self, text):
        for ch in text:
            self.call("Input.dispatchKeyEvent", {"type": "keyDown", "key": ch, "text": ch, "unmodifiedText": ch})
            self.call("Input.dispatchKeyEvent", {"type": "keyUp", "key": ch})

    def insert_text(self, text):
        self.call("Input.insertText", {"text": text})

    def pinch(self, x, y, start, end, steps=6):
        """Two fingers on a touch screen, centred on (x, y), moving from `start` to `end` pixels apart."""
        points = lambda d: [{"x": x - d / 2, "y": y, "id": 1}, {"x": x + d / 2, "y": y, "id": 2}]
        self.call("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 2})
        try:
            self.call("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": points(start)})
            for k in range(1, steps + 1):
                self.call("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": points(start + (end - start) * k / steps)})
            self.call("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        finally:
            self.call("Emulation.setTouchEmulationEnabled", {"enabled": False})

    def screenshot_png(self):
        return base64.b64decode(self.call("Page.captureScreenshot", {"format": "png"})["data"])

    def full_page_png(self, scale=1.0):
        """The whole page from the top, scaled (for the README's picture)."""
        w, h = self.js("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
        return base64.b64decode(self.call("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True, "clip": {"x": 0, "y": 0, "width": w, "height": h, "scale": scale}})["data"])

    def viewport(self, width, height, mobile=False):
        self.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})

    def errors(self, ignore_urls=()):
        self.drain()
        out = []
        for e in self.events:
            method, params = e.get("method"), e.get("params", {})
            if method == "Runtime.exceptionThrown":
                out.append(params["exceptionDetails"].get("exception", {}).get("description", "exception"))
            elif method == "Log.entryAdded":
                entry = params["entry"]
                if entry["level"] == "error" and not (entry.get("source") == "network" and any(u in entry.get("url", "") for u in ignore_urls)):
                    out.append(entry["text"])
            elif method == "Runtime.consoleAPICalled" and params["type"] == "error":
                out.append(str(params["args"]))
        return out


class Firefox(Browser):
    name = "firefox"
    # WebDriver key codepoints.
    KEYS = {"Enter": "\ue007", "Tab": "\ue004", "Delete": "\ue017", "ArrowRight": "\ue014", "0": "0", "n": "n", "p": "p"}
    CONTROL = "\ue009"

    def __init__(self, exe=None):
        super().__init__()
        exe = exe or next((shutil.which(c) for c in ("firefox-esr", "firefox") if shutil.which(c)), None)
        if not exe:
            raise Failure("no firefox: apt-get install -y firefox-esr")
        with open(os.path.join(self.profile, "user.js"), "w") as f:
            for k, v in {"browser.shell.checkDefaultBrowser": False, "app.update.disabledForTesting": True,
                         "datareporting.policy.dataSubmissionEnabled": False, "toolkit.telemetry.enabled": False,
                         "browser.startup.homepage_override.mstone": "ignore", "network.captive-portal-service.enabled": False,
                         "browser.safebrowsing.malware.enabled": False, "browser.safebrowsing.phishing.enabled": False,
                         "extensions.update.enabled": False, "browser.aboutwelcome.enabled": False}.items():
                f.write(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n")
        # Port 0: the browser takes a free port itself and prints it (no bind-close-rebind race with other processes).
        url = self._launch([exe, "--headless", "--no-remote", "--profile", self.profile, "--remote-debugging-port", "0",
                            "--window-size=1280,1000", "about:blank"], "WebDriver BiDi listening on")
        self.ws = websocket.create_connection(url.rstrip("/") + "/session", timeout=30, suppress_origin=True)
        self.call("session.new", {"capabilities": {}})
        self.context = self.call("browsingContext.getTree", {})["contexts"][0]["context"]
        self.call("session.subscribe", {"events": ["log.entryAdded"]})
        self.call("script.addPreloadScript", {"functionDeclaration": f"() => {{ {self.CSP_WATCH} }}"})

    def call(self, method, params, timeout=30):
        reply = self._send({"method": method, "params": params}, None, timeout)
        if reply.get("type") == "error":
            raise Failure(f"{method}: {reply.get('error')}: {reply.get('message')}")
        return reply.get("result", {})

    def _close_browser(self):
        self.call("browser.close", {}, timeout=5)

    def navigate(self, url):
        self.call("browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"})

    def js(self, expression, await_promise=False):
        # JSON round trip: the same plain values CDP's returnByValue gives, without decoding BiDi's RemoteValue.
        wrapped = f"(async () => JSON.stringify(await ({expression})))()"
        r = self.call("script.evaluate", {"expression": wrapped, "target": {"context": self.context},
                                          "awaitPromise": True, "resultOwnership": "none"})
        if r.get("type") == "exception":
            d = r.get("exceptionDetails", {})
            raise Failure(f"JS error in {expression[:80]!r}: {d.get('text', d)}")
        value = r.get("result", {})
        return json.loads(value["value"]) if value.get("type") == "string" else None

    def _pointer(self, *actions):
        self.call("input.performActions", {"context": self.context, "actions": [
            {"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"}, "actions": list(actions)}]})

    def move(self, x, y, pressed=False):
        self._pointer({"type": "pointerMove", "x": round(x), "y": round(y), "origin": "viewport"})

    def down(self, x, y):
        self._pointer({"type": "pointerMove", "x": round(x), "y": round(y), "origin": "viewport"}, {"type": "pointerDown", "button": 0})

    def up(self, x, y):
        self._pointer({"type": "pointerMove", "x": round(x), "y": round(y), "origin": "viewport"}, {"type": "pointerUp", "button": 0})

    def wheel(self, x, y, dy):
        self.call("input.performActions", {"context": self.context, "actions": [
            {"type": "wheel", "id": "wheel", "actions": [{"type": "scroll", "x": round(x), "y": round(y), "deltaX": 0, "deltaY": dy}]}]})

    def _keys(self, values):
        self.call("input.performActions", {"context": self.context, "actions": [
            {"type": "key", "id": "keyboard", "actions": values}]})

    def press(self, key, ctrl=False):
        v = self.KEYS[key]
        seq = [{"type": "keyDown", "value": v}, {"type": "keyUp", "value": v}]
        if ctrl:
            seq = [{"type": "keyDown", "value": self.CONTROL}] + seq + [{"type": "keyUp", "value": self.CONTROL}]
        self._keys(seq)

    def type_chars(self, text):
        seq = []
        for ch in text:
            seq += [{"type": "keyDown", "value": ch}, {"type": "keyUp", "value": ch}]
        if seq:
            self._keys(seq)

    def insert_text(self, text):
        # No BiDi command pastes; the editing command a paste performs does the same edit (and fires `input`).
        self.js(f"document.execCommand('insertText', false, {json.dumps(text)})")

    def screenshot_png(self):
        return base64.b64decode(self.call("browsingContext.captureScreenshot", {"context": self.context})["data"])

    def full_page_png(self, scale=1.0):
        return base64.b64decode(self.call("browsingContext.captureScreenshot", {"context": self.context, "origin": "document"})["data"])

    def viewport(self, width, height, mobile=False):
        self.call("browsingContext.setViewport", {"context": self.context, "viewport": {"width": width, "height": height}})

    def errors(self, ignore_urls=()):
        self.drain()
        out = []
        for e in self.events:
            if e.get("type") == "event" and e.get("method") == "log.entryAdded":
                p = e["params"]
                if p.get("level") == "error":
                    out.append(p.get("text", ""))
        return out
