#!/usr/bin/python3
"""Category-retrieval set and colour probe from Debian's tuxpaint-stamps-default (clip-art stamps sorted in folders).

Nothing comes from the internet: run.sh fetches the package with `apt-get download` and unpacks it with `dpkg-deb -x`;
this script only reads the unpacked tree (usr/share/tuxpaint/stamps). A stamp's category is its first two folder
levels (animals/birds, food/fruit, symbols/alphabets ...); categories with fewer than --min pictures are left out.
A stamp shipped as PNG is taken as it is; an SVG-only stamp is drawn with rsvg-convert (librsvg2-bin) at 512 px.
Every picture is flattened on white and saved as PNG.

Layout written to OUT:
  pictures/CATEGORY__NAME.png        CATEGORY with "/" written as "+"
  rotated/CATEGORY__NAME.png         the same picture with its hue turned by 120 degrees (the colour probe), for
                                     pictures that have colours to turn (mean absolute difference >= 8 of 255)
"""
import argparse, os, subprocess, sys, tempfile

from PIL import Image, ImageChops, ImageStat

SKIP = ("mirror", "flip", "thumb")


def stamps(root):
    chosen = {}
    for folder, _, files in os.walk(root):
        rel = os.path.relpath(folder, root).split(os.sep)
        if len(rel) < 2 or rel[0] == ".":
            continue
        category = "/".join(rel[:2])
        for name in sorted(files):
            stem, ext = os.path.splitext(name)
            if ext.lower() not in (".png", ".svg") or any(s in stem.lower() for s in SKIP):
                continue
            key = (category, os.path.relpath(os.path.join(folder, stem), root))
            # PNG first: an SVG is only drawn when its stamp has no PNG.
            if key not in chosen or ext.lower() == ".png":
                chosen[key] = os.path.join(folder, name)
    return chosen


def load(path):
    if path.endswith(".svg"):
        with tempfile.NamedTemporaryFile(suffix=".png") as out:
            subprocess.run(["rsvg-convert", "-w", "512", "-a", "-o", out.name, path], check=True, capture_output=True)
            image = Image.open(out.name)
            image.load()
    else:
        image = Image.open(path)
        image.load()
    rgba = image.convert("RGBA")
    flat = Image.new("RGB", rgba.size, (255, 255, 255))
    flat.paste(rgba, mask=rgba.split()[3])
    return flat


def rotate_hue(image, degrees=120):
    h, s, v = image.convert("HSV").split()
    shift = int(round(degrees / 360 * 256))
    h = h.point(lambda x: (x + shift) % 256)
    return Image.merge("HSV", (h, s, v)).convert("RGB")


def mean_difference(a, b):
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", required=True, help="the unpacked package's usr/share/tuxpaint/stamps")
    parser.add_argument("--out", required=True)
    parser.add_argument("--min", type=int, default=10)
    args = parser.parse_args()
    chosen = stamps(args.source)
    counts = {}
    for category, _ in chosen:
        counts[category] = counts.get(category, 0) + 1
    os.makedirs(os.path.join(args.out, "pictures"), exist_ok=True)
    os.makedirs(os.path.join(args.out, "rotated"), exist_ok=True)
    written = probed = 0
    for (category, stem), path in sorted(chosen.items()):
        if counts[category] < args.min:
            continue
        try:
            picture = load(path)
        except Exception as error:  # an unreadable stamp is reported and left out
            print(f"skipped {path}: {error}", file=sys.stderr)
            continue
        name = category.replace("/", "+") + "__" + stem.replace("/", "_") + ".png"
        picture.save(os.path.join(args.out, "pictures", name))
        rotated = rotate_hue(picture)
        # The colour probe needs a picture that has colours to turn: a gray or black-and-white stamp stays as it is.
        if ImageChops.difference(picture, rotated).convert("L").resize((64, 64)).getextrema()[1] >= 32 and mean_difference(picture, rotated) >= 8:
            rotated.save(os.path.join(args.out, "rotated", name))
            probed += 1
        written += 1
    kept = sorted(c for c in counts if counts[c] >= args.min)
    print(f"{written} pictures in {len(kept)} categories ({probed} colourful enough for the colour probe): {', '.join(kept)}")


if __name__ == "__main__":
    main()
