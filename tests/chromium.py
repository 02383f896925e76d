"""Headless Chromium driven through the DevTools protocol over a pipe (``--remote-debugging-pipe``: JSON messages
separated by NUL bytes on file descriptors 3 and 4), so the tests need no browser-driver package.

The flags keep an offline machine's Chromium from reaching for the network and from reusing a profile.
"""

import base64
import fcntl
import json
import os
import subprocess
import tempfile

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-pipe"]
# Every <img> of the page with whether it loaded: complete and with a decoded width.
IMAGES_SCRIPT = ("JSON.stringify(Array.from(document.images).map(function (image) {"
                 " return {alt: image.alt, loaded: image.complete && image.naturalWidth > 0}; }))")


def on_fds_3_and_4(commands, replies):
  """In the child: Chromium reads commands on fd 3 and writes replies on fd 4 (copied high first, so that
  neither copy overwrites the other)."""
  commands, replies = fcntl.fcntl(commands, fcntl.F_DUPFD, 10), fcntl.fcntl(replies, fcntl.F_DUPFD, 10)
  os.dup2(commands, 3)
  os.dup2(replies, 4)


class Browser:
  """One Chromium process; ``open`` loads a page and returns its images' load states and a screenshot."""

  def __init__(self, width=1280, height=1600):
    self.profile = tempfile.TemporaryDirectory(prefix="chromium-profile-")
    to_browser_read, self.to_browser = os.pipe()
    self.from_browser, from_browser_write = os.pipe()
    self.process = subprocess.Popen(
        [CHROMIUM, *FLAGS, f"--user-data-dir={self.profile.name}", f"--window-size={width},{height}",
         "about:blank"],
        pass_fds=(3, 4), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        preexec_fn=lambda: on_fds_3_and_4(to_browser_read, from_browser_write))
    os.close(to_browser_read)
    os.close(from_browser_write)
    self.buffer = b""
    self.next_id = 0
    self.events = []

  def _read_message(self):
    while b"\0" not in self.buffer:
      chunk = os.read(self.from_browser, 1 << 16)
      if not chunk:
        raise RuntimeError("chromium closed its DevTools pipe")
      self.buffer += chunk
    message, self.buffer = self.buffer.split(b"\0", 1)
    return json.loads(message)

  def send(self, method, session=None, **params):
    """Sends one command and returns its result (events that arrive meanwhile are kept in ``events``)."""
    self.next_id += 1
    message = {"id": self.next_id, "method": method, "params": params}
    if session:
      message["sessionId"] = session
    os.write(self.to_browser, json.dumps(message).encode() + b"\0")
    while True:
      reply = self._read_message()
      if reply.get("id") == self.next_id:
        if "error" in reply:
          raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]
      self.events.append(reply)

  def wait_for_event(self, method, session):
    while True:
      for index, event in enumerate(self.events):
        if event.get("method") == method and event.get("sessionId") == session:
          return self.events.pop(index)
      self.events.append(self._read_message())

  def open(self, url, screenshot_path=None):
    """Loads ``url``; returns [{alt, loaded}] for every image, after the load event (all images fetched)."""
    target = self.send("Target.createTarget", url="about:blank")["targetId"]
    session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    self.send("Page.enable", session)
    self.send("Page.navigate", session, url=url)
    self.wait_for_event("Page.loadEventFired", session)
    result = self.send("Runtime.evaluate", session, expression=IMAGES_SCRIPT, returnByValue=True)
    images = json.loads(result["result"]["value"])
    if screenshot_path:
      shot = self.send("Page.captureScreenshot", session, format="png")
      with open(screenshot_path, "wb") as f:
        f.write(base64.b64decode(shot["data"]))
    self.send("Target.closeTarget", targetId=target)
    return images

  def close(self):
    try:
      self.send("Browser.close")
    except (RuntimeError, OSError):
      pass
    try:
      self.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
      self.process.kill()
      self.process.wait()
    os.close(self.to_browser)
    os.close(self.from_browser)
    self.profile.cleanup()
