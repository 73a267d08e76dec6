#!/usr/bin/env bash
# Builds the Debian package of panoptes with dpkg-deb (no other packaging tool needed):
#   packaging/build-deb.sh                      # cargo build --release, then package
#   packaging/build-deb.sh --binary PATH        # package an already built binary
#   packaging/build-deb.sh --out DIR            # where the .deb goes (default: target/debian)
# Prints the path of the .deb it wrote.
set -euo pipefail
cd "$(dirname "$0")/.."

binary=""
out="target/debian"
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "build-deb.sh: unknown argument $1 (expected --binary PATH, --out DIR)" >&2; exit 2 ;;
  esac
done
if [ -z "$binary" ]; then
  cargo build --release --locked --bin panoptes >&2
  binary="target/release/panoptes"
fi
[ -x "$binary" ] || { echo "build-deb.sh: $binary is not an executable" >&2; exit 1; }

version="$("$binary" --version | awk '{print $2}')"
arch="$(dpkg --print-architecture)"
# The newest glibc symbol version the binary needs.
glibc="$(objdump -T "$binary" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)"

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
root="$stage/root"
install -D -m 0755 "$binary" "$root/usr/bin/panoptes"
strip --strip-unneeded "$root/usr/bin/panoptes" 2>/dev/null || true
install -D -m 0644 packaging/debian/panoptes.service "$root/lib/systemd/system/panoptes.service"
install -D -m 0644 packaging/etc/panoptes.toml "$root/etc/panoptes/panoptes.toml"
install -D -m 0640 packaging/etc/secrets.toml "$root/etc/panoptes/secrets.toml"
install -D -m 0644 packaging/etc/default-panoptes "$root/etc/default/panoptes"
for kind in discovery enrichment polling; do
  for f in conf/plugins/$kind/*; do
    install -D -m 0644 "$f" "$root/etc/panoptes/plugins/$kind/$(basename "$f")"
  done
done
# Shell completions and man pages, generated from the CLI itself.
"$root/usr/bin/panoptes" completions bash | install -D -m 0644 /dev/stdin "$root/usr/share/bash-completion/completions/panoptes"
"$root/usr/bin/panoptes" completions zsh | install -D -m 0644 /dev/stdin "$root/usr/share/zsh/vendor-completions/_panoptes"
"$root/usr/bin/panoptes" completions fish | install -D -m 0644 /dev/stdin "$root/usr/share/fish/vendor_completions.d/panoptes.fish"
"$root/usr/bin/panoptes" manpages "$root/usr/share/man/man1"
gzip -9n "$root"/usr/share/man/man1/*.1
install -D -m 0644 packaging/debian/copyright "$root/usr/share/doc/panoptes/copyright"
install -D -m 0644 README.md "$root/usr/share/doc/panoptes/README.md"

mkdir -p "$root/DEBIAN"
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$root/DEBIAN/"
(cd "$root" && find etc -type f | sed 's|^|/|' | sort) > "$root/DEBIAN/conffiles"
size="$(du -sk --exclude=DEBIAN "$root" | cut -f1)"
cat > "$root/DEBIAN/control" <<CONTROL
Package: panoptes
Version: $version
Architecture: $arch
Maintainer: Panoptes in Rust <panoptes@localhost>
Installed-Size: $size
Depends: libc6 (>= $glibc), adduser
Recommends: iputils-ping
Section: net
Priority: optional
Homepage: https://github.com/yahoo/panoptes
Description: network telemetry collector compatible with Yahoo Panoptes
 One binary that discovers devices, enriches them, polls them over SNMP, turns
 counters into rates, publishes metrics on Kafka-compatible topics and writes
 them to InfluxDB. Runs as the systemd service panoptes; configuration in
 /etc/panoptes, data in /var/lib/panoptes.
CONTROL

mkdir -p "$out"
deb="$out/panoptes_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >&2
echo "$deb"
