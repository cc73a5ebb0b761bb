#!/usr/bin/env python3
"""Decodes images with Pillow (an independent decoder) for the engine's tests.

Usage: pillow_decode.py OUT_DIR FILE...
For each FILE writes OUT_DIR/<basename>.png (the first frame, turned upright by its EXIF/TIFF
orientation, as RGBA8) and prints one line per file: "<basename>\t<Pillow mode>\t<w>x<h>" or
"<basename>\tERROR\t<message>".
"""
import os
import sys

from PIL import Image, ImageOps

out_dir = sys.argv[1]
for path in sys.argv[2:]:
    name = os.path.basename(path)
    try:
        with Image.open(path) as im:
            im.seek(0)
            mode = im.mode
            upright = ImageOps.exif_transpose(im)
            if mode.startswith("I;16") or mode == "I":
                # Pillow clips deep grey to 8 bits; scale it instead (as the engine does).
                upright = upright.convert("I").point(lambda i: i * (255 / 65535)).convert("L")
            rgba = upright.convert("RGBA")
            rgba.save(os.path.join(out_dir, name + ".png"))
            print(f"{name}\t{mode}\t{rgba.width}x{rgba.height}", flush=True)
    except Exception as e:  # noqa: BLE001 - every failure is reported, not raised
        print(f"{name}\tERROR\t{type(e).__name__}: {e}".replace("\n", " "), flush=True)
