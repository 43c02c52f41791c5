#!/usr/bin/env bash
# Calibration images for quantize_int8.py, none of them from the copy-detection evaluation set:
#   DEST/photos  - the photographs scikit-image ships as test data (Debian python3-skimage, BSD/CC0/public domain:
#                  see its README.txt), 20 images;
#   DEST/stamps  - every 4th picture of Debian tuxpaint-stamps-default (GPL-2+/CC: photos and drawings of
#                  animals, food, plants, objects, many on transparent backgrounds), about 200 images;
#   DEST/generated - 100 photo-like synthetic JPEGs from `ris-bench gen-images` (seed 11; the benchmarks use seed 1).
# Neither package is among those benchmarks/quality/fetch_debs.sh fetches for the copy-detection set.
# Needs apt-get (downloads the .debs only, installs nothing) and a built ris-bench (RIS_BENCH_BIN).
set -euo pipefail
dest=${1:?usage: calibration_images.sh DEST}
bench=${RIS_BENCH_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/benchmarks/ReverseImageSearch.Benchmarks/bin/Release/net10.0/linux-x64/ris-bench}
mkdir -p "$dest/debs" "$dest/tree" "$dest/photos" "$dest/stamps"
(cd "$dest/debs" && for package in python3-skimage tuxpaint-stamps-default; do
  ls "${package}"_*.deb >/dev/null 2>&1 || apt-get download "$package" >/dev/null
  for deb in "${package}"_*.deb; do dpkg-deb -x "$deb" "$dest/tree"; done
done)
skdata=$dest/tree/usr/lib/python3/dist-packages/skimage/data
for name in astronaut.png brick.png camera.png cell.png chelsea.png clock_motion.png coffee.png coins.png grass.png \
  gravel.png hubble_deep_field.jpg ihc.png microaneurysms.png moon.png motorcycle_left.png motorcycle_right.png \
  page.png retina.jpg rocket.jpg color.png; do
  cp "$skdata/$name" "$dest/photos/"
done
find "$dest/tree/usr/share/tuxpaint/stamps" -type f -iname '*.png' | LC_ALL=C sort | awk 'NR % 4 == 1' | while read -r file; do
  rel=${file#"$dest/tree/usr/share/tuxpaint/stamps/"}
  cp "$file" "$dest/stamps/${rel//\//_}"
done
"$bench" gen-images --out "$dest/generated" --count 100 --seed 11 --prefix calib >/dev/null
for set in photos stamps generated; do printf '%s %s\n' "$set" "$(find "$dest/$set" -type f | wc -l)"; done
