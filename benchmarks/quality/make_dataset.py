#!/usr/bin/python3
"""Copy-detection benchmark from the photographs and artwork that Debian's wallpaper packages ship.

Built the way Copydays / DISC21 are: originals (indexed together with distractors) and, for each original,
transformed copies used as queries. Nothing comes from the internet: the .deb files are fetched with
`apt-get download` and unpacked with `dpkg-deb -x` by run.sh; this script only reads the unpacked tree.

Layout written to OUT:
  index/o0001.jpg ...        originals and distractors (d0001.jpg ...), JPEG quality 92, longest side <= 1024
  queries/TRANSFORM/o0001__FORMAT.EXT
Transforms: crop (keeps 50-80% of the area), half (half size), jpeg20 (JPEG quality 20), mirror, rotate (5-15
degrees either way), jitter (brightness, contrast, saturation +-30%), grayscale, overlay (filled box and text).
Formats: each (original, transform) copy is saved in one of jpg, png, gif, bmp, webp, taken in turn, so every
transform appears in every format (saving every copy in every format would need gigabytes of BMP on this disk).
"""
import argparse, hashlib, os, random, sys

from PIL import Image, ImageDraw, ImageEnhance, ImageOps

FORMATS = [("jpg", "JPEG", {"quality": 90}), ("png", "PNG", {}), ("gif", "GIF", {}), ("bmp", "BMP", {}), ("webp", "WEBP", {"quality": 90})]
TRANSFORMS = ["crop", "half", "jpeg20", "mirror", "rotate", "jitter", "grayscale", "overlay"]
EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")
FLAT_STDDEV = 5.0


def candidates(root):
    found = []
    for folder, _, files in os.walk(root):
        if "images_dark" in folder or "/icons/" in folder or "/thumbnails" in folder:
            continue
        for name in files:
            if not name.lower().endswith(EXTENSIONS) or name.lower().startswith(("screenshot", "preview")):
                continue
            stem = os.path.splitext(name)[0]
            # GNOME and others ship light and dark variants of one picture: keep one.
            if stem.endswith(("-d", "-dark", "_dark", "-night")):
                continue
            path = os.path.join(folder, name)
            if os.path.getsize(path) < 40_000:
                continue
            found.append(path)
    # Plasma ships every wallpaper at many resolutions in one folder: keep the largest file per folder there.
    best = {}
    for path in found:
        key = os.path.dirname(path) if "/wallpapers/" in path and "/contents/images" in path else path
        if key not in best or os.path.getsize(path) > os.path.getsize(best[key]):
            best[key] = path
    return sorted(best.values())


def average_hash(image):
    small = image.convert("L").resize((16, 16), Image.BILINEAR)
    pixels = list(small.getdata())
    mean = sum(pixels) / len(pixels)
    return sum(1 << i for i, p in enumerate(pixels) if p > mean)


def is_flat(image):
    """Paper textures, plain backgrounds and blank (transparent) pictures: nearly uniform once shrunk to 32x32.

    A copy of such a picture cannot be told from another flat picture by its content, and several of them ship as
    tints of one texture, which the average hash does not catch. On Debian's packages the standard deviation of
    the 32x32 grayscale thumbnail is 0-3 for these and 7 or more for every real picture.
    """
    small = image.convert("L").resize((32, 32), Image.BILINEAR)
    pixels = list(small.getdata())
    mean = sum(pixels) / len(pixels)
    return (sum((p - mean) ** 2 for p in pixels) / len(pixels)) ** 0.5 < FLAT_STDDEV


def load(path, longest=1024):
    with Image.open(path) as image:
        image = ImageOps.exif_transpose(image).convert("RGB")
        if min(image.size) < 400:
            return None
        image.thumbnail((longest, longest), Image.LANCZOS)
        return image.copy()


def transform(kind, image, rng):
    w, h = image.size
    if kind == "crop":
        area = rng.uniform(0.5, 0.8)
        aspect = rng.uniform(0.75, 1.33)
        cw = min(w, int(round((area * w * h * aspect) ** 0.5)))
        ch = min(h, int(round(area * w * h / cw)))
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
        return image.crop((x, y, x + cw, y + ch))
    if kind == "half":
        return image.resize((w // 2, h // 2), Image.BILINEAR)
    if kind == "jpeg20":
        import io
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=20)
        buffer.seek(0)
        return Image.open(buffer).convert("RGB")
    if kind == "mirror":
        return ImageOps.mirror(image)
    if kind == "rotate":
        angle = rng.uniform(5, 15) * rng.choice([-1, 1])
        return image.rotate(angle, resample=Image.BILINEAR, expand=False)
    if kind == "jitter":
        image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.7, 1.3))
        image = ImageEnhance.Contrast(image).enhance(rng.uniform(0.7, 1.3))
        return ImageEnhance.Color(image).enhance(rng.uniform(0.7, 1.3))
    if kind == "grayscale":
        return ImageOps.grayscale(image).convert("RGB")
    if kind == "overlay":
        copy = image.copy()
        draw = ImageDraw.Draw(copy)
        bw, bh = int(w * rng.uniform(0.3, 0.5)), int(h * rng.uniform(0.2, 0.35))
        x, y = rng.randint(0, w - bw), rng.randint(0, h - bh)
        colour = tuple(rng.randint(0, 255) for _ in range(3))
        draw.rectangle((x, y, x + bw, y + bh), fill=colour)
        text_colour = tuple(255 - c for c in colour)
        for line in range(3):
            draw.text((x + 8, y + 8 + line * 14), f"COPY {rng.randint(1000, 9999)} sample text", fill=text_colour)
        draw.text((rng.randint(0, w // 2), rng.randint(0, h - 20)), "(c) reverse image search", fill=(255, 255, 255))
        return copy
    raise ValueError(kind)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", required=True, help="folder the .deb files were unpacked into")
    parser.add_argument("--out", required=True)
    parser.add_argument("--originals", type=int, default=80)
    parser.add_argument("--distractors", type=int, default=10_000, help="at most this many (all that remain by default)")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--keep-flat", action="store_true", help="keep flat pictures (textures, plain backgrounds) as the first builder did")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    paths = candidates(args.source)
    rng.shuffle(paths)
    images, hashes = [], []
    for path in paths:
        image = load(path)
        if image is None:
            continue
        if not args.keep_flat and is_flat(image):
            print(f"flat, skipped: {path}", file=sys.stderr)
            continue
        code = average_hash(image)
        # Near duplicates (the same picture in two packages or two crops of it) would make the labels wrong.
        if any(bin(code ^ other).count("1") < 20 for other in hashes):
            continue
        hashes.append(code)
        images.append((path, image))
        if len(images) >= args.originals + args.distractors:
            break
    if len(images) < args.originals + 1:
        sys.exit(f"only {len(images)} distinct images under {args.source}; need more than {args.originals}")

    os.makedirs(os.path.join(args.out, "index"), exist_ok=True)
    for kind in TRANSFORMS:
        os.makedirs(os.path.join(args.out, "queries", kind), exist_ok=True)
    originals = images[: args.originals]
    distractors = images[args.originals:]
    sources = []
    for i, (path, image) in enumerate(originals, 1):
        name = f"o{i:04d}"
        image.save(os.path.join(args.out, "index", name + ".jpg"), "JPEG", quality=92)
        sources.append(f"{name}\t{path}")
        for t, kind in enumerate(TRANSFORMS):
            ext, fmt, options = FORMATS[(i + t) % len(FORMATS)]
            copy = transform(kind, image, rng)
            if fmt == "GIF":
                copy = copy.convert("P", palette=Image.ADAPTIVE, colors=256)
            copy.save(os.path.join(args.out, "queries", kind, f"{name}__{ext}.{ext}"), fmt, **options)
    for i, (path, image) in enumerate(distractors, 1):
        name = f"d{i:04d}"
        image.save(os.path.join(args.out, "index", name + ".jpg"), "JPEG", quality=92)
        sources.append(f"{name}\t{path}")
    with open(os.path.join(args.out, "SOURCES.tsv"), "w") as out:
        out.write("\n".join(sources) + "\n")
    print(f"{len(originals)} originals, {len(distractors)} distractors, {len(originals) * len(TRANSFORMS)} queries in {args.out}")


if __name__ == "__main__":
    main()
