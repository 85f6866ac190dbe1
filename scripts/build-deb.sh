#!/usr/bin/env bash
# Builds the Debian package of visage with plain dpkg-deb from a staging tree:
#   scripts/build-deb.sh [BINARY] [OUT_DIR]
# BINARY defaults to ${CARGO_TARGET_DIR:-target}/release/visage, OUT_DIR to
# ${CARGO_TARGET_DIR:-target}/deb. The binary is copied with its debug sections removed
# (`objcopy --strip-debug`: the symbol table stays, so backtraces keep function names);
# the package holds it, the systemd unit, /etc/default/visage, models.lock and the docs
# (packaging/deb/). Timestamps come from SOURCE_DATE_EPOCH (default: the last commit), so
# the same binary gives the same .deb. Prints the path of the .deb on its last line.
set -euo pipefail
caller="$PWD"
cd "$(dirname "$0")/.."
from_caller() { if [[ "$1" == /* ]]; then echo "$1"; else echo "$caller/$1"; fi; }
bin="${CARGO_TARGET_DIR:-target}/release/visage"
out="${CARGO_TARGET_DIR:-target}/deb"
if (($# >= 1)); then bin="$(from_caller "$1")"; fi
if (($# >= 2)); then out="$(from_caller "$2")"; fi
[[ -x "$bin" ]] || { echo "build-deb: no executable at $bin (cargo build --release -p visage)" >&2; exit 1; }
for tool in dpkg-deb dpkg-shlibdeps objcopy; do
    command -v "$tool" >/dev/null || { echo "build-deb: $tool is missing (scripts/install-deps.sh --packaging)" >&2; exit 1; }
done
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"

version="$("$bin" --version | awk '{print $2}')"
arch="$(dpkg --print-architecture)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
root="$work/root"

install -d "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" "$root/etc/default" \
    "$root/usr/share/visage" "$root/usr/share/doc/visage"
objcopy --strip-debug "$bin" "$root/usr/bin/visage"
chmod 0755 "$root/usr/bin/visage"
install -m 0644 packaging/deb/visage.service "$root/lib/systemd/system/visage.service"
install -m 0644 packaging/deb/default "$root/etc/default/visage"
install -m 0644 models.lock "$root/usr/share/visage/models.lock"
install -m 0644 README.md docs/operating.md docs/commands.md "$root/usr/share/doc/visage/"
cat > "$root/usr/share/doc/visage/copyright" <<'COPYRIGHT'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: visage

Files: *
License: Apache-2.0
 On Debian systems the full text is in /usr/share/common-licenses/Apache-2.0.
COPYRIGHT
for script in postinst prerm postrm; do
    install -m 0755 "packaging/deb/$script" "$root/DEBIAN/$script"
done
echo /etc/default/visage > "$root/DEBIAN/conffiles"

# Shared-library dependencies of the binary, as dpkg-shlibdeps works them out.
mkdir -p "$work/src/debian"
printf 'Source: visage\n\nPackage: visage\nArchitecture: any\n' > "$work/src/debian/control"
depends="$(cd "$work/src" && dpkg-shlibdeps -O "$root/usr/bin/visage" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')"
[[ -n "$depends" ]] || { echo "build-deb: dpkg-shlibdeps found no dependency" >&2; exit 1; }

size_kb="$(du -sk --exclude=DEBIAN "$root" | cut -f1)"
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@INSTALLED_SIZE@/$size_kb/" \
    -e "s/@DEPENDS@/$depends/" packaging/deb/control.in > "$root/DEBIAN/control"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z \
    | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"
find "$root" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +

mkdir -p "$out"
deb="$out/visage_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >&2
echo "build-deb: $(du -h "$deb" | cut -f1) $deb (binary $(du -h "$root/usr/bin/visage" | cut -f1) stripped of debug info, from $(du -h "$bin" | cut -f1))" >&2
echo "$deb"
