#!/bin/sh
# make deb: builds mdscale_VERSION_ARCH.deb in OUT (default: the top folder)
# with Debian's own tools: a release build installed into a staging tree by
# meson, the shared-library dependencies from dpkg-shlibdeps, the package
# from dpkg-deb. The package installs the binary, the man page, the
# completions, the systemd unit (enabled and started where systemd runs)
# and /etc/mdscale/mdscale.json (a conffile); purging it also removes
# /var/lib/mdscale.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$top}
build=${DEB_BUILD:-$top/build-deb}

sh "$top/scripts/deps.sh" deb
[ -f "$build/build.ninja" ] ||
	meson setup "$build" "$top" --prefix=/usr --buildtype=release \
		-Dtests=false >/dev/null
ninja -C "$build" >/dev/null

version=${DEB_VERSION:-}
[ -n "$version" ] || version=$(meson introspect --projectinfo "$build" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
arch=$(dpkg --print-architecture)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
meson install -C "$build" --destdir "$root" --no-rebuild --quiet >/dev/null
strip --strip-unneeded "$root/usr/bin/mdscale"
install -d -m 0755 "$root/DEBIAN" "$root/usr/share/doc/mdscale"
install -m 0644 "$top/README.md" "$root/usr/share/doc/mdscale/README.md"
gzip -9n "$root/usr/share/man/man1/mdscale.1"

# dpkg-shlibdeps wants a source tree: give it a minimal one.
mkdir -p "$work/src/debian"
printf 'Source: mdscale\n\nPackage: mdscale\nArchitecture: any\n' \
	>"$work/src/debian/control"
depends=$(cd "$work/src" && dpkg-shlibdeps -O "$root/usr/bin/mdscale" \
	2>/dev/null | sed -n 's/^shlibs:Depends=//p')
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)

cat >"$root/DEBIAN/control" <<CONTROL
Package: mdscale
Version: $version
Architecture: $arch
Maintainer: mdscale developers <mdscale@localhost>
Installed-Size: $size
Depends: $depends, adduser
Section: admin
Priority: optional
Description: autoscaler for model deployments (HTTP inference endpoints)
 mdscale runs model servers as processes in cgroups behind its own gateway,
 watches their CPU, memory and request metrics, evaluates alarms written in
 OCI's Monitoring Query Language and scales them out, in, up and down with
 zero downtime through its autoscale function.
CONTROL
echo /etc/mdscale/mdscale.json >"$root/DEBIAN/conffiles"
for f in postinst prerm postrm; do
	install -m 0755 "$top/packaging/deb/$f" "$root/DEBIAN/$f"
done
deb=$out/mdscale_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
