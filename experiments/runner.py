"""Spread jobs over ComfyUI servers by queue length, retry a dropped server's jobs elsewhere, resume from a
manifest (one JSON line per finished job)."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .client import Comfy, ServerDown
from .jobs import Job, StudyError, fill

DEPTH = 2  # jobs in flight per server: one running, one queued behind it


@dataclass
class Progress:
    """done / running / failed with an ETA, on one stderr line."""

    total: int
    done: int = 0
    failed: int = 0
    running: int = 0
    started: float = field(default_factory=time.monotonic)
    finished_here: int = 0

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        left = self.total - self.done - self.failed
        eta = f"{elapsed / self.finished_here * left:.0f} s" if self.finished_here else "?"
        filled = int(30 * (self.done + self.failed) / max(self.total, 1))
        return (f"[{'#' * filled}{'.' * (30 - filled)}] done {self.done}/{self.total}, running {self.running}, "
                f"failed {self.failed}, ETA {eta}")

    def show(self, stream=sys.stderr) -> None:
        print("\r" + self.line(), end="", file=stream, flush=True)


def read_manifest(path: Path) -> dict[str, dict]:
    """Finished jobs by id (a line cut short by a crash is ignored)."""
    done = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            done[record["id"]] = record
    return done


def collect(server: Comfy, entry: dict, job: Job, out: Path) -> dict:
    """The job's manifest record: its r_t payloads and its saved images, downloaded into out/images."""
    rt, images = [], []
    for node_id, output in sorted(entry["outputs"].items()):
        rt += output.get("negative_guidance_rt", [])
        for i, image in enumerate(output.get("images", [])):
            if image.get("type") == "output":
                path = out / "images" / f"{job.id}_{node_id}_{i}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(server.view(image))
                images.append(str(path.relative_to(out)))
    return {"id": job.id, "params": job.params, "server": server.url, "status": entry["status"]["status_str"],
            "rt": rt, "images": images}


def run(template: dict, jobs: list[Job], servers: list[Comfy], out: Path, poll: float = 0.2,
        show=Progress.show) -> dict:
    """Run every job not yet in out/manifest.jsonl; return counts of what happened in this call."""
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / "manifest.jsonl"
    finished = read_manifest(manifest)
    pending = [job for job in jobs if job.id not in finished]
    progress = Progress(total=len(jobs), done=sum(r["status"] == "success" for r in finished.values()),
                        failed=sum(r["status"] != "success" for r in finished.values()))
    live = {server.url: server for server in servers}
    flight: dict[str, dict[str, Job]] = {url: {} for url in live}  # url → prompt_id → job
    stats = {"submitted": 0, "skipped": len(jobs) - len(pending), "retried": 0, "dropped_servers": []}

    def drop(url: str) -> None:
        stats["dropped_servers"].append(url)
        stats["retried"] += len(flight[url])
        pending[:0] = flight.pop(url).values()
        del live[url]

    with manifest.open("a", encoding="utf-8") as log:
        while pending or any(flight.values()):
            if not live:
                raise StudyError(f"every server dropped; {len(pending)} jobs left. Rerun to resume.")
            for url, server in list(live.items()):
                try:
                    for prompt_id, job in list(flight[url].items()):
                        entry = server.history(prompt_id)
                        if entry is not None:
                            record = collect(server, entry, job, out)
                            log.write(json.dumps(record) + "\n")
                            log.flush()
                            del flight[url][prompt_id]
                            progress.finished_here += 1
                            if record["status"] == "success":
                                progress.done += 1
                            else:
                                progress.failed += 1
                except ServerDown:
                    drop(url)
            for url in sorted(live, key=lambda u: len(flight[u])):
                server = live[url]
                try:
                    while pending and len(flight[url]) < DEPTH and server.queue_length() < DEPTH:
                        job = pending.pop(0)
                        try:
                            flight[url][server.submit(fill(template, job.params))] = job
                        except ServerDown:
                            pending.insert(0, job)
                            raise
                        stats["submitted"] += 1
                except ServerDown:
                    drop(url)
            progress.running = sum(len(f) for f in flight.values())
            show(progress)
            time.sleep(poll)
    print(file=sys.stderr)
    return stats
