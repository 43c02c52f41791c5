#!/usr/bin/env bash
# Fetches Debian's wallpaper and background packages with apt-get download (nothing from the internet beyond
# the Debian archive) and unpacks them with dpkg-deb -x into DEST/tree. Idempotent; missing packages are skipped.
set -euo pipefail
dest=${1:?usage: fetch_debs.sh DEST}
mkdir -p "$dest/debs" "$dest/tree"
packages=(
  plasma-workspace-wallpapers mate-backgrounds gnome-backgrounds ukui-wallpapers
  lomiri-wallpapers lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 sway-backgrounds
  budgie-backgrounds debian-edu-artwork-emerald debian-edu-artwork-homeworld debian-edu-artwork-softwaves
  debian-edu-artwork-spacefun debian-edu-artwork-buster kdegames-mahjongg-data-kf5 mypaint-data-extras
  xfce4-artwork desktop-base xfdesktop4-data lxde-common enlightenment-data fluxbox cinnamon-desktop-data
)
if [ -n "${RIS_BENCH_PACKAGES:-}" ]; then read -r -a packages <<<"$RIS_BENCH_PACKAGES"; fi
cd "$dest/debs"
for package in "${packages[@]}"; do
  if [ -e "$dest/tree/.done-$package" ]; then continue; fi
  if apt-get download "$package" >/dev/null 2>&1; then
    for deb in "${package}"_*.deb; do dpkg-deb -x "$deb" "$dest/tree"; rm -f "$deb"; done
    touch "$dest/tree/.done-$package"
  else
    echo "skipped $package (not in this machine's apt lists)" >&2
  fi
done
# Only pictures are needed: drop everything else to spare the disk.
find "$dest/tree" -type f ! \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' -o -iname '*.webp' -o -name '.done-*' \) -delete
