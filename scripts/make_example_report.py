"""Make the report of the bundled example and its screenshot, docs/img/report-example.png.

Runs the README's first command (`vocalfx match examples/dry_vocal.flac examples/reference.flac
-o example_match.wav`) with `--report example_report.html`, in a work directory, then takes a
screenshot of the top of the page with headless Chromium (`chromium --headless --screenshot`),
reduced to a 256-colour palette if it is over the size budget. Prints the sizes it measured
(they go in docs/guide/matching.md).

    .venv/bin/python scripts/make_example_report.py                 # work dir: a temporary one
    .venv/bin/python scripts/make_example_report.py --work runs/example --threads 1
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PNG_BUDGET = 500_000


def vocalfx_command() -> list:
    """The `vocalfx` program of this interpreter's environment (so the report records that command)."""
    exe = Path(sys.executable).parent / "vocalfx"
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "vocalfx.cli"]


def chromium() -> str:
    exe = os.environ.get("VOCALFX_CHROMIUM") or next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
    )
    if exe is None:
        sys.exit("no Chromium found (Debian: apt-get install chromium; or set VOCALFX_CHROMIUM)")
    return exe


def screenshot(html: Path, png: Path, width: int, height: int) -> None:
    profile = tempfile.mkdtemp(prefix="vocalfx-shot-")
    args = [
        chromium(),
        "--headless=new",
        "--disable-gpu",
        "--hide-scrollbars",
        "--mute-audio",
        "--no-first-run",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
        f"--screenshot={png}",
        html.resolve().as_uri(),
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.insert(1, "--no-sandbox")
    try:
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    if png.stat().st_size > PNG_BUDGET:
        from PIL import Image

        img = Image.open(png).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        buf = io.BytesIO()
        img.save(buf, format="PNG", optimize=True)
        png.write_bytes(buf.getvalue())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default=None, help="directory for the match's files (default: a temporary one)")
    ap.add_argument("--png", default=str(ROOT / "docs" / "img" / "report-example.png"), help="screenshot to write")
    ap.add_argument("--width", type=int, default=1280, help="browser window width in px (default 1280)")
    ap.add_argument("--height", type=int, default=2300, help="browser window height in px (default 2300)")
    ap.add_argument(
        "--threads", type=int, default=0, help="torch threads for the match (OMP_NUM_THREADS; default: torch's choice)"
    )
    a = ap.parse_args()

    work = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix="vocalfx-example-"))
    work.mkdir(parents=True, exist_ok=True)
    for name in ("dry_vocal.flac", "reference.flac"):
        (work / "examples").mkdir(exist_ok=True)
        shutil.copyfile(ROOT / "examples" / name, work / "examples" / name)
    env = dict(os.environ, **({"OMP_NUM_THREADS": str(a.threads)} if a.threads else {}))
    cmd = vocalfx_command() + [
        "match",
        "examples/dry_vocal.flac",
        "examples/reference.flac",
        "-o",
        "example_match.wav",
        "--report",
        "example_report.html",
    ]
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=work, env=env, check=True)
    seconds = time.perf_counter() - t0
    html = work / "example_report.html"
    png = Path(a.png)
    png.parent.mkdir(parents=True, exist_ok=True)
    screenshot(html, png, a.width, a.height)
    print(
        f"match + report: {seconds:.0f} s; report {html} {html.stat().st_size / 1e6:.2f} MB "
        f"({html.stat().st_size} bytes); screenshot {png} {png.stat().st_size / 1e3:.0f} KB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
