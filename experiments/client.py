"""ComfyUI's HTTP API, as the runner uses it: object_info, queue, prompt, history, view."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
import uuid

from .jobs import StudyError

ServerDown = (urllib.error.URLError, ConnectionError, TimeoutError, OSError)


class Comfy:
    """One ComfyUI server."""

    def __init__(self, url: str, timeout: float = 30):
        self.url, self.timeout, self.client_id = url.rstrip("/"), timeout, str(uuid.uuid4())

    def request(self, path: str, body: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=self.timeout) as reply:
            raw = reply.read()
        return raw if path.startswith("/view") else json.loads(raw)

    def check(self, class_types: set[str]) -> None:
        """Reachable, and every node the template uses is installed there."""
        try:
            installed = self.request("/object_info")
        except ServerDown as error:
            raise StudyError(f"server {self.url} is unreachable: {error}") from None
        if missing := sorted(class_types - set(installed)):
            raise StudyError(f"server {self.url} lacks the nodes {', '.join(missing)}: install the pack there")

    def queue_length(self) -> int:
        queue = self.request("/queue")
        return len(queue["queue_running"]) + len(queue["queue_pending"])

    def submit(self, prompt: dict) -> str:
        try:
            return self.request("/prompt", {"prompt": prompt, "client_id": self.client_id})["prompt_id"]
        except urllib.error.HTTPError as error:
            if error.code == 400:  # the server refused the prompt itself: not a dropped server
                raise StudyError(f"server {self.url} refused the prompt: {error.read().decode()[:500]}") from None
            raise

    def history(self, prompt_id: str) -> dict | None:
        """The finished entry of a prompt, or None while it runs."""
        entry = self.request(f"/history/{prompt_id}").get(prompt_id)
        return entry if entry and entry["status"].get("completed") is not None else None

    def view(self, image: dict) -> bytes:
        query = urllib.parse.urlencode({k: image[k] for k in ("filename", "subfolder", "type")})
        return self.request(f"/view?{query}")
