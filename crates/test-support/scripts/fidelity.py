#!/usr/bin/env python3
"""Colour and orientation fidelity: test inputs, and what a browser would show, judged by Pillow.

The reference for `crates/cli/tests/fidelity.rs` (issue 27): an output must look like its input in
a colour-managed browser. Everything here is independent of the engine: Pillow 13 decodes
(JPEG, PNG, WebP, AVIF, GIF), libheif's `heif-convert` decodes HEIC (it keeps the ICC profile and
applies the HEIF transforms), littlecms2 (`PIL.ImageCms`) manages colour.

Usage:
  fidelity.py make OUTDIR [CORPUS]
      Writes the test inputs into OUTDIR (made from `$COMPRESSOR_CORPUS`, or CORPUS, and the ICC
      profiles of Debian's colord-data in /usr/share/color/icc/colord/) and prints a JSON object
      {"inputs": [{"name", "path", "kind", "profile", "orientation"}, ...]}.
  fidelity.py measure A B
      Compares how A (the input) and B (an output) are displayed; prints one JSON object.
  fidelity.py measure-many PAIRS.json
      PAIRS.json holds [[A, B], ...]; prints one JSON object per pair, one per line, in order
      (two worker processes).

The inputs (small, 240-384 px on the long side, so a matrix of runs is quick):
  adobe_rgb.jpg       an sRGB photo converted into Adobe RGB (1998), JPEG q92 with the profile
  prophoto16.png      the photo converted into ProPhoto RGB, a 16-bit RGB PNG with iCCP (each
                      16-bit sample is v*257: exact in 8 bits, so the reference's 8-bit reading
                      and an engine's rounding agree)
  display_p3.webp     the photo converted into Display P3 (the profile bytes of a corpus iPhone
                      HEIC), lossy WebP q90 with ICCP
  display_p3.heic     the same P3 pixels through `heif-enc` (which keeps the PNG's ICC profile)
  grey_gamma18.jpg    a grey JPEG with a grey profile of gamma 1.8 built here (colord-data has no
                      grey profile and ImageCms.createProfile cannot make one); shown unmanaged it
                      is about 6 L* too dark in the mid-tones
  alpha_p3.png        the P3 photo as RGBA with a radial alpha ramp, Display P3 profile
  orient_N.jpg        N = 1..8: the corpus's exif-orientation__Portrait_N.jpg, stored pixels
                      scaled down, EXIF kept
  orient_N.png        the same stored pixels as PNG with the EXIF in an eXIf chunk
Wide-gamut pixels are made by converting an sRGB photo into the space (relative colorimetric), so
every colour is inside sRGB and converting back loses nothing but rounding.

What "displayed" means here: the first frame, turned upright by ImageOps.exif_transpose (not for
HEIC: libheif already applied irot/imir, and EXIF orientation does not apply to HEIF), converted
to sRGB from its embedded ICC profile (none means sRGB) with relative colorimetric intent (what
browsers do for matrix/TRC profiles), alpha composited over white (the CLI's default
--background, so a JPEG output flattened onto white compares like for like).

The measure JSON: a_size / b_size ([w, h] as displayed), a_format / b_format (Pillow's name, or
HEIC), a_profile / b_profile (ICC description or null), a_orientation / b_orientation (EXIF
orientation stored in the file, null when none), b_exif_tags (EXIF IFD0 tag numbers of B),
same_size, and when the sizes match: mean_dL, mean_dC (mean L* and mean chroma C* of B minus
those of A, so negative means darker / duller), mean_dE (mean per-pixel CIE76 Delta E), all in
CIE L*a*b* D50 (the ICC PCS; computed by littlecms from sRGB in 8-bit Lab, L* steps of 0.39,
rounding averages out in the means), max_channel_diff (largest difference of any R, G, B of the
composited sRGB pixels), max_alpha_diff, and notes (colour information Pillow would ignore but a
browser would not, e.g. an AVIF nclx box with non-sRGB primaries, a PNG gAMA/cHRM without iCCP,
or a profile the browser ignores, e.g. a grey profile on RGB pixels: shown as sRGB then).
"""
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib

from PIL import Image, ImageChops, ImageCms, ImageMath, ImageOps

COLORD = "/usr/share/color/icc/colord"
INTENT = ImageCms.Intent.RELATIVE_COLORIMETRIC
SRGB = ImageCms.createProfile("sRGB")
LAB = ImageCms.createProfile("LAB")  # D50
TO_LAB = ImageCms.buildTransform(SRGB, LAB, "RGB", "LAB", renderingIntent=INTENT)


# ---- making the inputs ---------------------------------------------------------------------


def colord(name):
    path = os.path.join(COLORD, name)
    if not os.path.exists(path):
        sys.exit(f"{path} is missing: install Debian's colord-data (scripts/install-deps.sh)")
    with open(path, "rb") as f:
        return f.read()


def profile(icc):
    return ImageCms.ImageCmsProfile(io.BytesIO(icc))


def description(icc):
    if not icc:
        return None
    try:
        return ImageCms.getProfileDescription(profile(icc)).strip()
    except Exception as e:  # noqa: BLE001 - an unreadable profile is reported, not raised
        return f"unreadable: {e}"


def from_srgb(im, icc, mode="RGB"):
    """sRGB pixels converted into the space of `icc` (an RGBA image keeps its alpha)."""
    rgb = im.convert("RGB")
    out = ImageCms.profileToProfile(rgb, SRGB, profile(icc), renderingIntent=INTENT, outputMode=mode)
    if im.mode == "RGBA":
        out.putalpha(im.getchannel("A"))
    return out


def heic_icc(path):
    """The ICC profile in a HEIF `colr` box of type `prof`."""
    with open(path, "rb") as f:
        data = f.read()
    i = data.find(b"colrprof")
    if i < 4:
        sys.exit(f"{path} has no ICC profile")
    size = struct.unpack(">I", data[i - 4 : i])[0]
    return data[i + 8 : i - 4 + size]


def s15(x):
    return struct.pack(">i", round(x * 65536))


def grey_profile(gamma):
    """A minimal ICC v2 grey display profile: D50 white, a pure gamma kTRC."""
    desc = f"Gray Gamma {gamma}".encode() + b"\0"
    tags = [
        (b"desc", b"desc" + bytes(4) + struct.pack(">I", len(desc)) + desc + bytes(4 + 4 + 2 + 1 + 67)),
        (b"cprt", b"text" + bytes(4) + b"No copyright, test profile\0"),
        (b"wtpt", b"XYZ " + bytes(4) + s15(0.9642) + s15(1.0) + s15(0.8249)),
        (b"kTRC", b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256))),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for sig, body in tags:
        data += bytes(-(offset + len(data)) % 4)
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    header = (
        struct.pack(">I", offset + len(data)) + b"lcms" + bytes([2, 0x10, 0, 0]) + b"mntr" + b"GRAY" + b"XYZ "
        + bytes(12) + b"acsp" + b"APPL" + bytes(4 + 4 + 4 + 8 + 4) + s15(0.9642) + s15(1.0) + s15(0.8249)
        + b"lcms" + bytes(44)
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


def png_rgb16(path, im, icc):
    """An 8-bit RGB image as a 16-bit RGB PNG (v*257) with an iCCP chunk (Pillow writes no 48-bit PNG)."""
    w, h = im.size
    raw = im.tobytes()
    rows = bytearray()
    for y in range(h):
        rows.append(0)
        for v in raw[y * w * 3 : (y + 1) * w * 3]:
            rows += bytes((v, v))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)))
        f.write(chunk(b"iCCP", b"ProPhoto RGB\0\0" + zlib.compress(icc)))
        f.write(chunk(b"IDAT", zlib.compress(bytes(rows), 6)))
        f.write(chunk(b"IEND", b""))


def radial_alpha(size):
    """Opaque in the middle, fading to transparent towards the corners."""
    distance = Image.radial_gradient("L").resize(size)  # 0 in the centre, 255 at 1.41 x the half side
    return distance.point(lambda d: min(255, max(0, (230 - d) * 3)))


def make(out_dir, corpus):
    os.makedirs(out_dir, exist_ok=True)
    inputs = []

    def add(name, kind):
        path = os.path.join(out_dir, name)
        info = probe(path)
        inputs.append(
            {"name": name, "path": path, "kind": kind, "profile": info["profile"], "orientation": info["orientation"]}
        )

    photo = Image.open(os.path.join(corpus, "photos_jpeg/libjxl__flower_flower.png.im_q85_rgb.jpg"))
    photo.draft("RGB", (600, 400))
    photo = photo.convert("RGB").resize((384, 256), Image.Resampling.LANCZOS)

    adobe = colord("AdobeRGB1998.icc")
    from_srgb(photo, adobe).save(os.path.join(out_dir, "adobe_rgb.jpg"), quality=92, icc_profile=adobe)
    add("adobe_rgb.jpg", "colour")

    prophoto = colord("ProPhotoRGB.icc")
    png_rgb16(os.path.join(out_dir, "prophoto16.png"), from_srgb(photo, prophoto), prophoto)
    add("prophoto16.png", "colour")

    p3 = heic_icc(os.path.join(corpus, "heic/pillow_heif__pug.heic"))
    photo_p3 = from_srgb(photo, p3)
    photo_p3.save(os.path.join(out_dir, "display_p3.webp"), quality=90, icc_profile=p3)
    add("display_p3.webp", "colour")

    with tempfile.TemporaryDirectory() as tmp:
        png = os.path.join(tmp, "p3.png")
        photo_p3.save(png, icc_profile=p3)
        heic = os.path.join(out_dir, "display_p3.heic")
        run = subprocess.run(["heif-enc", "-q", "90", png, "-o", heic], capture_output=True, text=True)
        if run.returncode != 0:
            sys.exit(f"heif-enc: {run.stderr}")
    add("display_p3.heic", "heic")

    grey = grey_profile(1.8)
    from_srgb(photo, grey, mode="L").save(os.path.join(out_dir, "grey_gamma18.jpg"), quality=92, icc_profile=grey)
    add("grey_gamma18.jpg", "colour")

    rgba = photo.convert("RGBA")
    rgba.putalpha(radial_alpha(rgba.size))
    from_srgb(rgba, p3).save(os.path.join(out_dir, "alpha_p3.png"), icc_profile=p3)
    add("alpha_p3.png", "colour")

    for n in range(1, 9):
        src = Image.open(os.path.join(corpus, f"photos_jpeg/exif-orientation__Portrait_{n}.jpg"))
        exif = src.info["exif"]
        w, h = src.size  # as stored: 1200x1800 or 1800x1200
        small = src.convert("RGB").reduce(5)
        assert small.size == (w // 5, h // 5)
        small.save(os.path.join(out_dir, f"orient_{n}.jpg"), quality=90, exif=exif)
        add(f"orient_{n}.jpg", "orientation")
        small.save(os.path.join(out_dir, f"orient_{n}.png"), exif=exif)
        add(f"orient_{n}.png", "orientation")
    return {"inputs": inputs}


# ---- decoding as displayed -----------------------------------------------------------------


def is_heif(path):
    with open(path, "rb") as f:
        head = f.read(12)
    return head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"heim", b"heis", b"hevc")


def open_image(path, tmp):
    """(Pillow image, format name, is HEIF). HEIF goes through heif-convert to a PNG."""
    if is_heif(path):
        png = os.path.join(tmp, os.path.basename(path) + ".png")
        run = subprocess.run(["heif-convert", "-q", "100", path, png], capture_output=True, text=True)
        if run.returncode != 0:
            raise RuntimeError(f"heif-convert {path}: {run.stderr.strip()}")
        im = Image.open(png)
        im.load()
        return im, "HEIC", True
    im = Image.open(path)
    im.seek(0)
    im.load()
    return im, im.format, False


def nclx_notes(path, fmt):
    """Colour a browser honours but Pillow ignores."""
    notes = []
    with open(path, "rb") as f:
        data = f.read()
    if fmt == "AVIF":
        i = data.find(b"colrnclx")
        if i >= 0:
            primaries, transfer, _matrix = struct.unpack(">HHH", data[i + 8 : i + 14])
            if primaries not in (1, 2):
                notes.append(f"AVIF nclx colour primaries {primaries} (not sRGB/BT.709), ignored by the reference")
            if transfer not in (1, 2, 6, 13):
                notes.append(f"AVIF nclx transfer characteristics {transfer} (not sRGB), ignored by the reference")
    if fmt == "PNG" and b"iCCP" not in data and b"sRGB" not in data[:4096]:
        for kind in (b"gAMA", b"cHRM"):
            if kind in data[:4096]:
                notes.append(f"PNG {kind.decode()} without iCCP/sRGB, ignored by the reference")
    return notes


def probe(path):
    with tempfile.TemporaryDirectory() as tmp:
        im, fmt, heif = open_image(path, tmp)
        exif = im.getexif()
        return {
            "format": fmt,
            "size": list(im.size),
            "profile": description(im.info.get("icc_profile")),
            "orientation": None if heif else exif.get(0x0112),
            "exif_tags": sorted(exif.keys()),
        }


def displayed(path, tmp):
    """(info, RGB image in sRGB composited over white, alpha channel)."""
    im, fmt, heif = open_image(path, tmp)
    exif = im.getexif()
    info = {
        "format": fmt,
        "profile": description(im.info.get("icc_profile")),
        "orientation": None if heif else exif.get(0x0112),
        "exif_tags": sorted(exif.keys()),
        "notes": nclx_notes(path, fmt),
    }
    icc = im.info.get("icc_profile")
    if not heif:
        im = ImageOps.exif_transpose(im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        # Pillow clips deep grey to 8 bits; scale it instead.
        im = im.convert("I").point(lambda i: i * (255 / 65535)).convert("L")
    if im.mode in ("1", "P", "PA"):
        im = im.convert("RGBA")
    alpha = im.getchannel("A") if im.mode in ("RGBA", "LA", "La", "RGBa") else Image.new("L", im.size, 255)
    if im.mode in ("L", "LA", "La"):
        colour = im.convert("L")
    elif im.mode == "CMYK":
        colour = im
    else:
        colour = im.convert("RGB")
    space = profile(icc).profile.xcolor_space.strip() if icc else None
    if space and space != {"L": "GRAY"}.get(colour.mode, colour.mode):
        # A browser ignores a profile made for other channels (an RGB image with a grey profile):
        # the pixels are shown as sRGB. So does the reference, and says so.
        info["notes"].append(f"{space} ICC profile on a {colour.mode} image: ignored, shown as sRGB")
        icc = None
    if icc:
        colour = ImageCms.profileToProfile(colour, profile(icc), SRGB, renderingIntent=INTENT, outputMode="RGB")
    else:
        colour = colour.convert("RGB")
    info["size"] = list(colour.size)
    shown = Image.composite(colour, Image.new("RGB", colour.size, (255, 255, 255)), alpha)
    return info, shown, alpha


def lab_bands(rgb):
    lab = ImageCms.applyTransform(rgb, TO_LAB)
    return [band.convert("F") for band in lab.split()]


def mean(im):
    """The exact mean of an F image (ImageStat bins F images into 256 buckets, so not that)."""
    return im.resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))


def measure(a, b):
    with tempfile.TemporaryDirectory() as tmp:
        ia, sa, aa = displayed(a, tmp)
        ib, sb, ab = displayed(b, tmp)
    out = {"a": a, "b": b}
    for key in ("format", "size", "profile", "orientation"):
        out["a_" + key] = ia[key]
        out["b_" + key] = ib[key]
    out["b_exif_tags"] = ib["exif_tags"]
    out["notes"] = ia["notes"] + ib["notes"]
    out["same_size"] = ia["size"] == ib["size"]
    if not out["same_size"]:
        return out
    la, xa, ya = lab_bands(sa)
    lb, xb, yb = lab_bands(sb)
    ca = ImageMath.lambda_eval(lambda v: ((v["x"] - 128) ** 2 + (v["y"] - 128) ** 2) ** 0.5, x=xa, y=ya)
    cb = ImageMath.lambda_eval(lambda v: ((v["x"] - 128) ** 2 + (v["y"] - 128) ** 2) ** 0.5, x=xb, y=yb)
    de = ImageMath.lambda_eval(
        lambda v: (((v["l1"] - v["l2"]) * (100 / 255)) ** 2 + (v["x1"] - v["x2"]) ** 2 + (v["y1"] - v["y2"]) ** 2) ** 0.5,
        l1=la, l2=lb, x1=xa, x2=xb, y1=ya, y2=yb,
    )
    out["mean_dL"] = round((mean(lb) - mean(la)) * 100 / 255, 3)
    out["mean_dC"] = round(mean(cb) - mean(ca), 3)
    out["mean_dE"] = round(mean(de), 3)
    out["max_channel_diff"] = max(hi for _, hi in ImageChops.difference(sa, sb).getextrema())
    out["max_alpha_diff"] = ImageChops.difference(aa, ab).getextrema()[1]
    return out


def measure_safely(pair):
    a, b = pair
    try:
        return measure(a, b)
    except Exception as e:  # noqa: BLE001 - a pair that cannot be decoded is a result, not a crash
        return {"a": a, "b": b, "error": f"{type(e).__name__}: {e}".replace("\n", " ")}


def main():
    args = sys.argv[1:]
    if len(args) in (2, 3) and args[0] == "make":
        corpus = args[2] if len(args) == 3 else os.environ.get("COMPRESSOR_CORPUS")
        if not corpus:
            sys.exit("make needs the corpus: set COMPRESSOR_CORPUS or pass it after OUTDIR")
        print(json.dumps(make(args[1], corpus), indent=1))
    elif len(args) == 3 and args[0] == "measure":
        print(json.dumps(measure(args[1], args[2])))
    elif len(args) == 2 and args[0] == "measure-many":
        with open(args[1]) as f:
            pairs = json.load(f)
        from multiprocessing import Pool

        with Pool(2) as pool:
            for result in pool.imap(measure_safely, pairs, chunksize=4):
                print(json.dumps(result), flush=True)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
