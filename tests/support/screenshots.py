"""Screenshots of example workflows as ComfyUI's frontend draws them: the thumbnails of the examples that need real
models, which this project cannot run.

A live server (tests/support/live_server.py) serves the frontend to headless Chromium (Debian's chromium and
chromedriver, driven by Selenium). Its model folders hold empty files named as the workflows' loaders name them, so
every loader shows the file a user would have and no missing-model error; nothing is queued. Each workflow is loaded,
the canvas is zoomed onto the nodes the example frames (``Example.frame``: the pack's nodes), drawn at twice the size
and scaled down, so that their titles and widget values stay readable in the thumbnail.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import live_server
from PIL import Image

MODEL_FOLDERS = {"ckpt_name": "checkpoints", "unet_name": "diffusion_models", "clip_name": "text_encoders",
                 "clip_name1": "text_encoders", "clip_name2": "text_encoders", "clip_name3": "text_encoders",
                 "vae_name": "vae", "lora_name": "loras"}  # a loader's file input → the models folder it lists
SETTINGS = {"Comfy.TutorialCompleted": True, "Comfy.Minimap.Visible": False, "Comfy.Graph.CanvasInfo": False,
            "LiteGraph.Canvas.MinFontSizeForLOD": 1}  # text at any zoom: the canvas hides it below 8 px by default
PIXEL_RATIO = 2  # device pixels per CSS pixel: drawn twice as large, then scaled down
WINDOW = (1600, 1200)  # CSS pixels
ORIGIN = (160, 160)  # where the framed region is drawn: clear of the side bar, the tabs and the toolbars
MARGIN = 24  # graph units around the framed nodes
LEAST_ZOOM, MOST_ZOOM = 0.5, 0.8  # below 0.5 widget values blur; above 0.8 too little of the graph shows
Photograph = Callable[[dict, list[str], tuple[int, int]], Image.Image]


def model_files(prompts: list[dict]) -> set[tuple[str, str]]:
    """(models folder, file name) of every model file the prompts' loaders name."""
    return {(MODEL_FOLDERS[name], value) for prompt in prompts for node in prompt.values()
            for name, value in node["inputs"].items() if name in MODEL_FOLDERS and isinstance(value, str)}


def server_base(prompts: list[dict]) -> Path:
    """A server base dir with the pack, the test pack and an empty file for every model file the prompts name."""
    base = live_server.make_base(Path(tempfile.mkdtemp(prefix="screenshots_")) / "base")
    for folder, name in model_files(prompts):
        (base / "models" / folder).mkdir(parents=True, exist_ok=True)
        (base / "models" / folder / name).write_bytes(b"")
    return base


def chromium(url: str):
    """Headless Chromium on the server's frontend, once its app has a graph."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--force-device-scale-factor={PIXEL_RATIO}",
                 f"--user-data-dir={tempfile.mkdtemp(prefix='chromium_')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    driver.set_script_timeout(120)
    driver.get(url)
    WebDriverWait(driver, 90).until(lambda d: d.execute_script(
        "return !!(window.app && app.graph && window.LiteGraph && app.extensions?.length)"))
    return driver


@contextmanager
def frontend(prompts: list[dict]) -> Iterator[Photograph]:
    """A live server whose loaders list the prompts' model files, and Chromium on its frontend; yields
    ``photograph(workflow, node_ids, size)``."""
    import requests

    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        raise RuntimeError("the screenshots need Debian's chromium and chromium-driver, and selenium")
    with contextmanager(live_server.serve)(server_base(prompts)) as server:
        for name, value in SETTINGS.items():
            requests.post(f"{server.url}/settings/{name}", json=value, timeout=30)
        driver = chromium(server.url)
        try:
            yield lambda workflow, node_ids, size: photograph(driver, workflow, node_ids, size)
        finally:
            driver.quit()


def frame(driver, node_ids: list[str], size: tuple[int, int]) -> float:
    """Zoom and pan the canvas so that the nodes (titles included) fill a region of ``size`` CSS pixels at ORIGIN,
    centred; returns the zoom. Raises if they would need a zoom below LEAST_ZOOM."""
    left, top, right, bottom = driver.execute_script("""
        const [ids] = arguments, title = LiteGraph.NODE_TITLE_HEIGHT;
        const nodes = ids.map(id => app.graph.getNodeById(Number(id)));
        return [Math.min(...nodes.map(n => n.pos[0])), Math.min(...nodes.map(n => n.pos[1] - title)),
                Math.max(...nodes.map(n => n.pos[0] + n.size[0])), Math.max(...nodes.map(n => n.pos[1] + n.size[1]))];
    """, node_ids)
    zoom = min(MOST_ZOOM, size[0] / (right - left + 2 * MARGIN), size[1] / (bottom - top + 2 * MARGIN))
    if zoom < LEAST_ZOOM:
        raise ValueError(f"nodes {node_ids} fit {size[0]}×{size[1]} px only at zoom {zoom:.2f}, where their text "
                         f"cannot be read (least {LEAST_ZOOM}): frame fewer nodes")
    offset = [(ORIGIN[0] + size[0] / 2) / zoom - (left + right) / 2,
              (ORIGIN[1] + size[1] / 2) / zoom - (top + bottom) / 2]
    driver.execute_script("""
        const [zoom, offset] = arguments;
        app.canvas.ds.scale = zoom;
        app.canvas.ds.offset = offset;
        app.canvas.setDirty(true, true);
    """, zoom, offset)
    return zoom


def photograph(driver, workflow: dict, node_ids: list[str], size: tuple[int, int]) -> Image.Image:
    """The workflow as the frontend draws it, framed on ``node_ids``: a picture of ``size`` pixels."""
    driver.execute_async_script("const [workflow, done] = arguments; app.loadGraphData(workflow).then(() => done());",
                                workflow)
    frame(driver, node_ids, size)
    time.sleep(1.0)  # the canvas and the nodes' DOM widgets redraw on the next frames
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "page.png"
        driver.save_screenshot(str(path))
        with Image.open(path) as page:
            box = [PIXEL_RATIO * v for v in (*ORIGIN, ORIGIN[0] + size[0], ORIGIN[1] + size[1])]
            return page.convert("RGB").crop(box).resize(size, Image.Resampling.LANCZOS)
