"""A headless Chromium driven over the DevTools protocol, for tests of HTML pages.

No Selenium or Playwright: this starts Debian's ``chromium`` itself, talks to
one page target over a websocket (``websocket-client``) and offers the few
things the report tests need::

    with HeadlessBrowser() as browser:
        browser.open("/tmp/report/index.html")      # waits for the load event
        browser.evaluate("document.images.length")  # a JSON-able value
        browser.screenshot("/tmp/report.png")       # full-page PNG
        assert browser.errors() == []               # console/exception/log errors

Errors are collected from three places, because a page can fail in three
ways: ``console.error`` calls (``Runtime.consoleAPICalled``), uncaught
exceptions (``Runtime.exceptionThrown``) and browser log entries of level
error (``Log.entryAdded``; a file or image that fails to load is logged there
as a network error, e.g. ``net::ERR_FILE_NOT_FOUND``).

The browser and all its helper processes (started in their own process
group) are killed on leaving the ``with`` block, whatever happened inside it;
while the browser runs, this process is a child subreaper (Linux), so that
helpers orphaned by the kill are reaped here rather than left as zombies.
Chromium is ``$CHROMIUM`` if set, else ``chromium`` on PATH (Debian:
``apt-get install chromium``).
"""

import base64
import contextlib
import ctypes
import itertools
import json
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request

import websocket

CHROMIUM_ENV = "CHROMIUM"
"""Environment variable naming the Chromium executable (default: ``chromium`` on PATH)."""

_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--remote-debugging-port=0",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
)


class BrowserError(RuntimeError):
    """Chromium is missing, did not start, or did not answer in time."""


def find_chromium() -> str:
    """The Chromium executable: $CHROMIUM, else ``chromium`` (or a Chrome) on PATH."""
    named = os.environ.get(CHROMIUM_ENV)
    if named:
        found = shutil.which(named)
        if not found:
            raise BrowserError(f"${CHROMIUM_ENV}={named!r} is not an executable")
        return found
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    raise BrowserError(
        "Chromium not found on PATH: install it (Debian/Ubuntu: "
        "`apt-get install chromium`) or set $CHROMIUM to a Chromium/Chrome executable"
    )


class HeadlessBrowser:
    """One headless Chromium with one page; use as a context manager.

    ``timeout`` (seconds) bounds each wait: the start, each protocol command
    and each page load.
    """

    def __init__(self, executable: str | None = None, timeout: float = 60.0):
        self.executable = executable or find_chromium()
        self.timeout = timeout
        self._process: subprocess.Popen | None = None
        self._profile: str | None = None
        self._ws: websocket.WebSocket | None = None
        self._log = None
        self._ids = itertools.count(1)
        self._events: list[dict] = []
        self._errors: list[str] = []
        self._holds_subreaper = False
        self._children_before: set[int] = set()

    # -- life cycle ---------------------------------------------------------

    def __enter__(self) -> "HeadlessBrowser":
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _start(self) -> None:
        # Chromium's helpers (zygote, renderers) outlive its main process by a
        # moment; as a subreaper this process adopts and reaps them, where
        # they would otherwise stay zombies under an init that reaps nothing.
        _subreaper_acquire()
        self._holds_subreaper = True
        self._children_before = child_pids()
        self._profile = tempfile.mkdtemp(prefix="chromium-profile-")
        self._log = open(os.path.join(self._profile, "stderr.log"), "wb")
        self._process = subprocess.Popen(
            [self.executable, *_ARGS, f"--user-data-dir={self._profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed as one in close()
        )
        port = self._wait_for_port()
        target = self._http(port, "/json/new?about:blank", method="PUT")
        self._ws = websocket.create_connection(
            target["webSocketDebuggerUrl"],
            timeout=self.timeout,
            suppress_origin=True,  # Chromium refuses websockets with a foreign Origin
            enable_multithread=False,
        )
        for domain in ("Runtime", "Log", "Page"):
            self.send(f"{domain}.enable")

    def _wait_for_port(self) -> int:
        """The port Chromium chose: first line of <user-data-dir>/DevToolsActivePort."""
        port_file = pathlib.Path(self._profile, "DevToolsActivePort")
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BrowserError(
                    f"{self.executable} exited with code {self._process.returncode} "
                    f"before listening:\n{self._stderr_tail()}"
                )
            try:
                lines = port_file.read_text().splitlines()
            except FileNotFoundError:
                lines = []
            if lines and lines[0].strip().isdigit():
                return int(lines[0])
            time.sleep(0.05)
        raise BrowserError(
            f"{self.executable} wrote no {port_file} within {self.timeout:.0f} s:\n"
            f"{self._stderr_tail()}"
        )

    def _http(self, port: int, path: str, method: str = "GET") -> dict:
        """A JSON answer of the DevTools HTTP endpoint (no proxy: it is localhost)."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
        with opener.open(request, timeout=self.timeout) as response:
            return json.load(response)

    def _stderr_tail(self, chars: int = 2000) -> str:
        try:
            return pathlib.Path(self._profile, "stderr.log").read_text(errors="replace")[-chars:]
        except OSError:
            return "(no output)"

    def close(self) -> None:
        """Closes the connection, kills the browser's process group, removes the profile."""
        if self._ws is not None:
            with contextlib.suppress(Exception):  # the browser may be gone already
                self._ws.close()
            self._ws = None
        if self._process is not None:
            group = self._process.pid  # start_new_session: the group id is its pid
            _kill_group(group)
            self._process.wait(timeout=self.timeout)
            self._process = None
            if _is_child_subreaper():
                _reap_group(group, self.timeout)
                _reap_crash_handlers(self._children_before)
        if self._holds_subreaper:
            _subreaper_release()
            self._holds_subreaper = False
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._profile is not None:
            shutil.rmtree(self._profile, ignore_errors=True)
            self._profile = None

    # -- protocol -----------------------------------------------------------

    def send(self, method: str, **params) -> dict:
        """Sends one command and returns its result; events read meanwhile are kept."""
        if self._ws is None:
            raise BrowserError("the browser is not running (use it inside `with`)")
        message_id = next(self._ids)
        self._ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout
        while True:
            message = self._receive(deadline, f"the answer to {method}")
            if message.get("id") == message_id:
                if "error" in message:
                    raise BrowserError(f"{method} failed: {message['error']}")
                return message.get("result", {})

    def _receive(self, deadline: float, waiting_for: str) -> dict:
        """The next message; an event is recorded (and its error, if any) on the way."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BrowserError(f"no {waiting_for} within {self.timeout:.0f} s")
        self._ws.settimeout(remaining)
        try:
            message = json.loads(self._ws.recv())
        except websocket.WebSocketTimeoutException as error:
            raise BrowserError(f"no {waiting_for} within {self.timeout:.0f} s") from error
        except (websocket.WebSocketException, OSError) as error:
            raise BrowserError(
                f"lost the browser while waiting for {waiting_for}: {error}\n{self._stderr_tail()}"
            ) from error
        if "method" in message:
            self._events.append(message)
            error = _error_of(message)
            if error:
                self._errors.append(error)
        return message

    def wait_for_event(self, method: str, since: int = 0) -> dict:
        """The first event named ``method`` at index ``since`` or later, read if needed."""
        deadline = time.monotonic() + self.timeout
        index = since
        while True:
            while index < len(self._events):
                if self._events[index]["method"] == method:
                    return self._events[index]
                index += 1
            self._receive(deadline, f"event {method}")

    # -- what tests use -----------------------------------------------------

    def open(self, path_or_url: str | os.PathLike) -> None:
        """Navigates to a URL or local file and waits for its load event.

        Errors of an earlier page are dropped. After the load event, one
        round trip to the page lets late log entries arrive first.
        """
        url = str(path_or_url)
        if "://" not in url and not url.startswith(("about:", "data:")):
            url = pathlib.Path(url).resolve().as_uri()
        self._errors.clear()
        since = len(self._events)
        result = self.send("Page.navigate", url=url)
        if result.get("errorText"):
            raise BrowserError(f"could not open {url}: {result['errorText']}")
        self.wait_for_event("Page.loadEventFired", since)
        self.evaluate("new Promise(resolve => setTimeout(resolve, 50))", await_promise=True)

    def evaluate(self, expression: str, await_promise: bool = False):
        """The value of a JavaScript expression in the page (JSON-able values only)."""
        result = self.send(
            "Runtime.evaluate",
            expression=expression,
            returnByValue=True,
            awaitPromise=await_promise,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"evaluating {expression!r} threw: {text}")
        return result["result"].get("value")

    def errors(self) -> list[str]:
        """Errors the current page logged so far (console, exceptions, log entries)."""
        return list(self._errors)

    def screenshot(self, path: str | os.PathLike, width: int = 1280) -> pathlib.Path:
        """Saves a PNG of the whole page, ``width`` CSS pixels wide, and returns its path."""
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=800,
            deviceScaleFactor=1,
            mobile=False,
        )
        height = self.evaluate(
            "Math.max(document.documentElement.scrollHeight, document.body ? "
            "document.body.scrollHeight : 0)"
        )
        height = max(1, min(int(height or 1), 16384))  # Skia's largest bitmap side
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        result = self.send(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
        )
        self.send("Emulation.clearDeviceMetricsOverride")
        path = pathlib.Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(result["data"]))
        return path


def _kill_group(group: int) -> None:
    """SIGKILL to every process in the group, if any is left."""
    try:
        os.killpg(group, signal.SIGKILL)
    except ProcessLookupError:
        pass


_PR_SET_CHILD_SUBREAPER, _PR_GET_CHILD_SUBREAPER = 36, 37
_subreaper = {"users": 0, "set_here": False}
"""Browsers open in this process, and whether the first one turned subreaping on."""


def _is_child_subreaper() -> bool:
    try:
        state = ctypes.c_int(0)
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(state), 0, 0, 0) != 0:
            return False
        return bool(state.value)
    except (OSError, AttributeError):  # not Linux
        return False


def _prctl_subreaper(on: bool) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) == 0
    except (OSError, AttributeError):  # not Linux
        return False


def _subreaper_acquire() -> None:
    """Makes this process a child subreaper while any browser runs (unless it was already)."""
    if _subreaper["users"] == 0 and not _is_child_subreaper():
        _subreaper["set_here"] = _prctl_subreaper(True)
    _subreaper["users"] += 1


def _subreaper_release() -> None:
    _subreaper["users"] -= 1
    if _subreaper["users"] == 0 and _subreaper["set_here"]:
        _prctl_subreaper(False)
        _subreaper["set_here"] = False


def _reap_group(group: int, timeout: float) -> None:
    """Waits for the killed process group to be gone, reaping those adopted meanwhile."""
    deadline = time.monotonic() + min(timeout, 5.0)
    while time.monotonic() < deadline:
        try:
            while os.waitpid(-group, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            pass
        try:
            os.killpg(group, 0)  # succeeds while any member (zombies too) exists
        except ProcessLookupError:
            return
        _kill_group(group)  # a helper forked just before the first kill
        time.sleep(0.01)


def child_pids() -> set[int]:
    """Pids of this process's children, from /proc (empty where there is none)."""
    me, pids = os.getpid(), set()
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[1]) == me:  # fields[0] is the state, [1] the parent pid
            pids.add(int(stat.parent.name))
    return pids


def _reap_crash_handlers(children_before: set[int]) -> None:
    """Reaps the crashpad handlers the browser started, adopted by this subreaper.

    Chromium starts them detached, in process groups of their own; they end
    when the browser does. (With two browsers open at once, closing the older
    one also ends the younger one's handlers, which only loses crash reports.)
    """
    for pid in child_pids() - children_before:
        try:
            comm = pathlib.Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        if comm.startswith("chrome_crashpad"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def _error_of(event: dict) -> str | None:
    """A one-line description if the DevTools event reports an error, else None."""
    method, params = event["method"], event.get("params", {})
    if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
        texts = [
            str(arg.get("value", arg.get("description", arg.get("type"))))
            for arg in params.get("args", [])
        ]
        return f"console.{params['type']}: {' '.join(texts)}"
    if method == "Runtime.exceptionThrown":
        details = params.get("exceptionDetails", {})
        text = details.get("exception", {}).get("description") or details.get("text")
        return f"exception: {text} ({details.get('url', '')}:{details.get('lineNumber', '?')})"
    if method == "Log.entryAdded":
        entry = params.get("entry", {})
        if entry.get("level") == "error":
            return (
                f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}".strip()
            )
    return None
