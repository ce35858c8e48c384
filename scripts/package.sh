#!/usr/bin/env bash
# Builds icmpcap's Linux packages offline into artifacts/packages/:
#   dkms      icmpcap-dkms_<version>_all.deb: module source + dkms.conf under /usr/src/icmpcap-<version>/, the
#             udev rule, the icmpcap group, DKMS builds for every kernel with headers. Always buildable.
#   deb       icmpcap_<version>_amd64.deb: the app with its Electron (/usr/lib/icmpcap), /usr/bin/icmpcap
#             (the CLI run by that Electron as Node), desktop entry, icons, .pcapng/.pcap associations.
#             Needs an unpacked Electron: ICMPCAP_ELECTRON_DIST or ELECTRON_OVERRIDE_DIST_PATH.
#   appimage  icmpcap-<version>-x86_64.AppImage with electron-builder (build/electron-builder.cjs); needs
#             electron-builder and its AppImage runtime download. Where either is missing it stops after
#             checking the unpacked app directory and says what is missing.
# Usage: scripts/package.sh [dkms] [deb] [appimage]   (no argument: all three)
#   ICMPCAP_PACKAGE_OUT (default artifacts/packages), ICMPCAP_PACKAGE_VERSION (default package.json's),
#   ICMPCAP_DEB_COMPRESSION (dpkg-deb -Z, default xz)
# The debs are assembled with dpkg-deb (as electron-builder's deb target would with fpm, which cannot be
# downloaded here), from the same values electron-builder reads (build/app-meta.cjs).
# Exit status: 0 built, 1 error, 3 a target cannot be built on this machine (the message says why).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

OUT=${ICMPCAP_PACKAGE_OUT:-$ROOT/artifacts/packages}
WORK=$OUT/.work
UNPACKED=$OUT/linux-unpacked
ICONS=$OUT/icons
ICON_SIZES="16 24 32 48 64 128 256 512"
ELECTRON_DIST=${ICMPCAP_ELECTRON_DIST:-${ELECTRON_OVERRIDE_DIST_PATH:-}}

log() { echo "[package] $*" >&2; }
die() {
	echo "package: $*" >&2
	exit 1
}
cannot() {
	echo "package: $*" >&2
	exit 3
}

meta() { node -e "const m = require('./build/app-meta.cjs'); const v = m$1; console.log(Array.isArray(v) ? v.join(', ') : v)"; }

need_tools() {
	local t missing=""
	for t in "$@"; do command -v "$t" >/dev/null || missing="$missing $t"; done
	[ -z "$missing" ] || die "missing tools:$missing (apt-get install dpkg-dev fakeroot librsvg2-bin)"
}

# ICMPCAP_PACKAGE_VERSION: another version than package.json's (snapshots; the upgrade test).
VERSION=${ICMPCAP_PACKAGE_VERSION:-$(meta .version)}
MAINTAINER=$(meta .maintainer)

# usr/share/doc/$1/{copyright,changelog.gz} in staging root $2; $3 = license text block.
write_docs() {
	local pkg=$1 root=$2 license=$3 doc
	doc=$root/usr/share/doc/$pkg
	mkdir -p "$doc"
	cat >"$doc/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: icmpcap
Source: https://github.com/icmpcap/icmpcap

$license
EOF
	# A native package's changelog; gzip -n keeps the package reproducible.
	printf '%s (%s) unstable; urgency=medium\n\n  * Release %s.\n\n -- %s  %s\n' \
		"$pkg" "$VERSION" "$VERSION" "$MAINTAINER" \
		"$(LC_ALL=C date -R -d "@${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")" |
		gzip -9n >"$doc/changelog.gz"
}

# Finishes staging root $1 (md5sums, Installed-Size, normal modes) and builds $2.
build_deb() {
	local root=$1 deb=$2 size
	(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z |
		xargs -0r md5sum >DEBIAN/md5sums)
	size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
	sed -i "s/^Installed-Size: .*/Installed-Size: $size/" "$root/DEBIAN/control"
	find "$root" -type d -exec chmod 0755 {} +
	chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"
	fakeroot dpkg-deb --root-owner-group --threads-max="$(nproc)" -Z"${ICMPCAP_DEB_COMPRESSION:-xz}" --build "$root" "$deb" >/dev/null
	log "built $deb ($(du -h "$deb" | cut -f1))"
}

package_dkms() {
	local pkg=icmpcap-dkms root src s
	root=$WORK/$pkg
	src=$root/usr/src/icmpcap-$VERSION
	rm -rf "$root"
	mkdir -p "$root/DEBIAN" "$src/include" "$root/usr/lib/udev/rules.d" "$root/usr/lib/modules-load.d"
	cp kernel/Makefile kernel/Kbuild kernel/*.c kernel/*.h "$src/"
	cp -r kernel/include/. "$src/include/"
	# dkms.conf as the kernel/ folder has it, with the package's version: DKMS looks for the source in
	# /usr/src/<PACKAGE_NAME>-<PACKAGE_VERSION>/.
	grep -q '^PACKAGE_VERSION=' kernel/dkms.conf || die "kernel/dkms.conf has no PACKAGE_VERSION line"
	sed "s/^PACKAGE_VERSION=.*/PACKAGE_VERSION=\"$VERSION\"/" kernel/dkms.conf >"$src/dkms.conf"
	find "$src" -type f -exec chmod 0644 {} +
	install -m 0644 build/deb/icmpcap-dkms/60-icmpcap.rules "$root/usr/lib/udev/rules.d/60-icmpcap.rules"
	install -m 0644 build/deb/icmpcap-dkms/modules-load.conf "$root/usr/lib/modules-load.d/icmpcap.conf"
	for s in postinst prerm postrm; do
		sed "s/@VERSION@/$VERSION/g" "build/deb/icmpcap-dkms/$s" >"$root/DEBIAN/$s"
		chmod 0755 "$root/DEBIAN/$s"
	done
	write_docs "$pkg" "$root" "Files: *
Copyright: 2025-2026 the icmpcap authors
License: GPL-2
 This program is free software; you can redistribute it and/or modify it under the terms of the GNU
 General Public License version 2 as published by the Free Software Foundation.
 .
 On Debian systems, the complete text of the GNU General Public License version 2 can be found in
 '/usr/share/common-licenses/GPL-2'."
	cat >"$root/DEBIAN/control" <<EOF
Package: $pkg
Version: $VERSION
Architecture: all
Maintainer: $MAINTAINER
Installed-Size: 0
Depends: dkms (>= 2.8), kmod, udev, passwd
Recommends: linux-headers-amd64 | linux-headers-generic | linux-headers, openssl, mokutil
Section: kernel
Priority: optional
Homepage: https://github.com/icmpcap/icmpcap
Description: icmpcap capture kernel module (DKMS source)
 The icmpcap.ko kernel module hooks netfilter and hands every ICMP and ICMPv6
 packet to the icmpcap application through per-CPU shared-memory rings.
 .
 DKMS builds it for every installed kernel that has headers, and again after
 each kernel upgrade. The package creates the icmpcap system group and a udev
 rule that gives /dev/icmpcap to that group: its members capture without root.
 Under Secure Boot the module loads once the DKMS signing key is enrolled
 (mokutil --import /var/lib/dkms/mok.pub); until then icmpcap captures
 through its AF_PACKET helper.
EOF
	build_deb "$root" "$OUT/${pkg}_${VERSION}_all.deb"
}

render_icons() {
	local s
	mkdir -p "$ICONS"
	for s in $ICON_SIZES; do
		if command -v rsvg-convert >/dev/null; then
			rsvg-convert -w "$s" -h "$s" build/icons/icmpcap.svg -o "$ICONS/${s}x${s}.png"
		elif command -v convert >/dev/null; then
			convert -background none -density 384 build/icons/icmpcap.svg -resize "${s}x${s}" "$ICONS/${s}x${s}.png"
		else
			die "no SVG renderer: apt-get install librsvg2-bin (or imagemagick)"
		fi
	done
}

# Says what is missing for the app package, or returns when everything is there.
check_inputs() {
	local f missing=""
	for f in dist/electron/core/cli.js dist/electron/main/main.js dist/preload dist/renderer/index.html \
		native/build/Release/icmpcap.node native/build/Release/icmpcap-helper bin/icmpcap.mjs; do
		[ -e "$f" ] || missing="$missing $f"
	done
	[ -z "$missing" ] || die "not built yet (missing:$missing): run npm run build"
	if [ -z "$ELECTRON_DIST" ]; then
		cannot "the icmpcap app package needs an unpacked Electron $(electron_version) for linux-x64, and none was given.
  Set ICMPCAP_ELECTRON_DIST (or ELECTRON_OVERRIDE_DIST_PATH) to the folder unpacked from
  electron-v$(electron_version)-linux-x64.zip (the folder that holds the 'electron' executable), then run this again.
  This machine cannot download Electron, so only icmpcap-dkms was built here."
	fi
	[ -x "$ELECTRON_DIST/electron" ] || cannot "$ELECTRON_DIST/electron: no such executable (ICMPCAP_ELECTRON_DIST must be the unpacked electron-v$(electron_version)-linux-x64.zip folder)"
	if [ ! -f "$ELECTRON_DIST/resources.pak" ] || [ ! -f "$ELECTRON_DIST/version" ]; then
		if [ "${ICMPCAP_ALLOW_STANDIN_ELECTRON:-}" != 1 ]; then
			cannot "$ELECTRON_DIST does not look like an Electron build (no resources.pak or version file)"
		fi
		log "WARNING: $ELECTRON_DIST is a stand-in, not Electron (ICMPCAP_ALLOW_STANDIN_ELECTRON=1): packaging tests only, never ship this"
	elif [ "$(cat "$ELECTRON_DIST/version")" != "$(electron_version)" ]; then
		log "WARNING: $ELECTRON_DIST is Electron $(cat "$ELECTRON_DIST/version"); package.json pins $(electron_version)"
	fi
}

electron_version() {
	node -p "try { require('electron/package.json').version } catch { require('./package.json').devDependencies.electron.replace(/^[^0-9]*/, '') }" 2>/dev/null
}

have_electron_builder() { [ -x node_modules/.bin/electron-builder ]; }

# Copies the production dependencies (package.json "dependencies" minus build-time ones) into $1/node_modules.
copy_node_modules() {
	node - "$1" <<'EOF'
const fs = require('node:fs');
const path = require('node:path');
const dest = process.argv[2];
const buildOnly = new Set(['node-gyp', 'node-addon-api']);
const seen = new Set();
function copy(name) {
  if (seen.has(name) || buildOnly.has(name)) return;
  seen.add(name);
  const src = path.join('node_modules', name);
  if (!fs.existsSync(src)) throw new Error(`node_modules/${name} is missing: run npm install`);
  fs.cpSync(src, path.join(dest, 'node_modules', name), { recursive: true, dereference: true });
  const pkg = JSON.parse(fs.readFileSync(path.join(src, 'package.json'), 'utf8'));
  for (const dep of Object.keys(pkg.dependencies ?? {})) copy(dep);
}
const top = JSON.parse(fs.readFileSync('package.json', 'utf8'));
for (const dep of Object.keys(top.dependencies ?? {})) copy(dep);
console.error(`[package] node_modules: ${[...seen].join(' ')}`);
EOF
}

# linux-unpacked the way electron-builder's `--linux dir` lays it out.
stage_unpacked() {
	local app=$UNPACKED/resources/app f
	rm -rf "$UNPACKED"
	mkdir -p "$UNPACKED"
	cp -a "$ELECTRON_DIST/." "$UNPACKED/"
	mv "$UNPACKED/electron" "$UNPACKED/icmpcap"
	rm -f "$UNPACKED/resources/default_app.asar"
	mkdir -p "$app/native/build/Release" "$app/bin" "$app/dist/electron"
	node -e "
const p = require('./package.json');
const keep = ['name', 'version', 'description', 'license', 'private', 'type', 'main', 'bin', 'engines'];
const out = Object.fromEntries(keep.filter((k) => k in p).map((k) => [k, p[k]]));
out.dependencies = Object.fromEntries(Object.entries(p.dependencies).filter(([k]) => !['node-gyp', 'node-addon-api'].includes(k)));
process.stdout.write(JSON.stringify(out, null, 2) + '\n');" >"$app/package.json"
	cp bin/icmpcap.mjs bin/icmpcap-extcap.mjs "$app/bin/"
	(cd dist/electron && find . -name '*.js' ! -name '*.test.js' -print0 | cpio -0pdm --quiet "$app/dist/electron")
	cp -r dist/preload dist/renderer "$app/dist/"
	find "$app/dist" \( -name '*.map' -o -name '*.tsbuildinfo' -o -name '*.d.ts' \) -delete
	cp native/index.js native/index.d.ts native/package.json "$app/native/"
	cp native/build/Release/icmpcap.node native/build/Release/icmpcap-helper "$app/native/build/Release/"
	chmod 0644 "$app/native/build/Release/icmpcap.node"
	# Run by the bundled Electron as Node (icmpcap-cli), never through its #!/usr/bin/env node line.
	chmod 0644 "$app/bin/icmpcap.mjs" "$app/bin/icmpcap-extcap.mjs"
	copy_node_modules "$app"
	install -m 0755 build/linux/icmpcap-cli "$UNPACKED/icmpcap-cli"
	for f in "$app/native/build/Release/icmpcap.node" "$app/native/build/Release/icmpcap-helper" "$UNPACKED/icmpcap"; do
		strip --strip-unneeded "$f" 2>/dev/null || true
	done
}

make_unpacked() {
	render_icons
	# Staged by this script in electron-builder's `--linux dir` layout, whether or not electron-builder is
	# installed: the same tree then feeds the debs (dpkg-deb) and the AppImage (electron-builder --prepackaged).
	log "staging linux-unpacked (electronDist=$ELECTRON_DIST)"
	stage_unpacked
	check_unpacked
}

# The unpacked app directory holds the app, the addon, the helper, the renderer and a working CLI.
check_unpacked() {
	local app=$UNPACKED/resources/app f out bad=0
	for f in icmpcap icmpcap-cli resources/app/package.json resources/app/dist/electron/main/main.js \
		resources/app/dist/preload resources/app/dist/renderer/index.html resources/app/dist/electron/core/cli.js \
		resources/app/native/build/Release/icmpcap.node resources/app/native/build/Release/icmpcap-helper \
		resources/app/bin/icmpcap.mjs resources/app/bin/icmpcap-extcap.mjs resources/app/node_modules/ws resources/app/node_modules/zod; do
		if [ ! -e "$UNPACKED/$f" ]; then
			echo "package: linux-unpacked lacks $f" >&2
			bad=1
		fi
	done
	[ $bad = 0 ] || die "the unpacked app directory $UNPACKED is incomplete"
	file -b "$app/native/build/Release/icmpcap-helper" | grep -q '^ELF 64-bit.*x86-64' ||
		die "icmpcap-helper is not an x86-64 executable"
	if ! out=$("$UNPACKED/icmpcap-cli" sources 2>&1); then
		echo "$out" >&2
		die "the packaged CLI does not run: $UNPACKED/icmpcap-cli sources (ELECTRON_RUN_AS_NODE with the bundled Electron)"
	fi
	echo "$out" | grep -q afpacket || die "the packaged CLI's 'sources' output does not mention afpacket: $out"
	log "linux-unpacked checked: app, addon, helper, renderer, CLI ('icmpcap sources' runs)"
}

# ${shlibs:Depends} of the ELF files under staging root $1, from dpkg-shlibdeps as debhelper would run it.
shlibs_depends() {
	local root=$1 tmp f args=()
	tmp=$(mktemp -d)
	mkdir -p "$tmp/debian"
	printf 'Source: icmpcap\n\nPackage: icmpcap\nArchitecture: any\n' >"$tmp/debian/control"
	while IFS= read -r -d '' f; do
		file -b "$f" | grep -q '^ELF' && args+=("-e$f")
	done < <(find "$root/usr/lib/icmpcap" -type f \( -perm -0100 -o -name '*.so*' -o -name '*.node' \) -print0)
	# -l: Electron's own libraries (libffmpeg.so, ...) sit next to it; --ignore-missing-info: they belong to
	# this package, not to one dpkg knows.
	if ! out=$(cd "$tmp" && dpkg-shlibdeps -O --ignore-missing-info -l"$root/usr/lib/icmpcap" "${args[@]}" 2>"$tmp/err"); then
		cat "$tmp/err" >&2
		rm -rf "$tmp"
		die "dpkg-shlibdeps failed: the libraries the app links must be installed on the build machine"
	fi
	rm -rf "$tmp"
	sed -n 's/^shlibs:Depends=//p' <<<"$out"
}

desktop_entry() {
	node -e "
const m = require('./build/app-meta.cjs');
const e = {
  Type: 'Application',
  ...m.desktopEntry,
  Exec: '/usr/lib/icmpcap/icmpcap --js-flags=' + m.serviceV8Flags.join(' ') + ' %U',
  Icon: 'icmpcap',
  Terminal: 'false',
  MimeType: m.fileAssociations.map((a) => a.mimeType).join(';') + ';',
};
process.stdout.write('[Desktop Entry]\n' + Object.entries(e).map(([k, v]) => k + '=' + v).join('\n') + '\n');"
}

# application/x-pcapng is not in shared-mime-info (wireshark-common defines it); application/vnd.tcpdump.pcap is.
mime_xml() {
	cat <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<mime-info xmlns="http://www.freedesktop.org/standards/shared-mime-info">
  <mime-type type="application/x-pcapng">
    <comment>Packet capture (pcapng)</comment>
    <magic>
      <match type="big32" offset="0" value="0x0a0d0d0a">
        <match type="big32" offset="8" value="0x1a2b3c4d"/>
      </match>
      <match type="little32" offset="0" value="0x0a0d0d0a">
        <match type="little32" offset="8" value="0x1a2b3c4d"/>
      </match>
    </magic>
    <glob pattern="*.pcapng"/>
  </mime-type>
</mime-info>
EOF
}

package_app() {
	local pkg=icmpcap root s shlibs
	check_inputs
	make_unpacked
	root=$WORK/$pkg
	rm -rf "$root"
	mkdir -p "$root/DEBIAN" "$root/usr/lib" "$root/usr/bin" "$root/usr/share/applications" \
		"$root/usr/share/mime/packages" "$root/usr/share/icons/hicolor/scalable/apps"
	cp -a "$UNPACKED" "$root/usr/lib/icmpcap"
	ln -s ../lib/icmpcap/icmpcap-cli "$root/usr/bin/icmpcap"
	# Wireshark's global extcap folder (Debian 12, amd64): Wireshark and tshark list an "icmpcap" interface.
	install -D -m 0755 build/extcap/icmpcap "$root/usr/lib/x86_64-linux-gnu/wireshark/extcap/icmpcap"
	desktop_entry >"$root/usr/share/applications/icmpcap.desktop"
	mime_xml >"$root/usr/share/mime/packages/icmpcap.xml"
	for s in $ICON_SIZES; do
		install -D -m 0644 "$ICONS/${s}x${s}.png" "$root/usr/share/icons/hicolor/${s}x${s}/apps/icmpcap.png"
	done
	install -m 0644 build/icons/icmpcap.svg "$root/usr/share/icons/hicolor/scalable/apps/icmpcap.svg"
	for s in postinst postrm; do install -m 0755 "build/deb/icmpcap/$s" "$root/DEBIAN/$s"; done
	install -D -m 0644 build/deb/icmpcap/lintian-overrides "$root/usr/share/lintian/overrides/icmpcap"
	mkdir -p "$root/usr/share/man/man1"
	gzip -9n <build/deb/icmpcap/icmpcap.1 >"$root/usr/share/man/man1/icmpcap.1.gz"
	shlibs=$(shlibs_depends "$root")
	[ -n "$shlibs" ] || die "dpkg-shlibdeps found no shared library dependencies in $root/usr/lib/icmpcap"
	write_docs "$pkg" "$root" "Files: *
Copyright: 2025-2026 the icmpcap authors
License: Expat
 Permission is hereby granted, free of charge, to any person obtaining a copy of this software and
 associated documentation files (the \"Software\"), to deal in the Software without restriction,
 including without limitation the rights to use, copy, modify, merge, publish, distribute, sublicense,
 and/or sell copies of the Software, and to permit persons to whom the Software is furnished to do so,
 subject to the following conditions:
 .
 The above copyright notice and this permission notice shall be included in all copies or substantial
 portions of the Software.
 .
 THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT
 LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN
 NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY,
 WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE
 SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.

Files: usr/lib/icmpcap/LICENSE* usr/lib/icmpcap/*.so usr/lib/icmpcap/*.pak usr/lib/icmpcap/*.bin usr/lib/icmpcap/*.dat
Copyright: 2013-2026 the Electron and Chromium authors
License: Electron-and-Chromium
 Electron is MIT licensed; Chromium's licenses are listed in usr/lib/icmpcap/LICENSES.chromium.html."
	cat >"$root/DEBIAN/control" <<EOF
Package: $pkg
Version: $VERSION
Architecture: amd64
Maintainer: $MAINTAINER
Installed-Size: 0
Depends: $shlibs, icmpcap-dkms (= $VERSION), $(meta .debDepends)
Section: net
Priority: optional
Homepage: https://github.com/icmpcap/icmpcap
Description: $(meta .synopsis)
$(meta .description | fold -s -w 74 | sed 's/ *$//; s/^/ /')
 .
 The desktop app never runs as root: members of the icmpcap group capture
 with the icmpcap kernel module (package icmpcap-dkms), or through a small
 helper that holds CAP_NET_RAW where the module cannot load. The icmpcap
 command serves the same UI to a browser and captures from a terminal.
EOF
	build_deb "$root" "$OUT/${pkg}_${VERSION}_amd64.deb"
}

package_appimage() {
	check_inputs
	make_unpacked
	if ! have_electron_builder; then
		cannot "AppImage: not built. The unpacked app directory ($UNPACKED) passed its checks, but electron-builder
  is not installed (add it: npm install --save-dev electron-builder@26.17.0) and its AppImage runtime is
  downloaded from github.com/electron-userland/electron-builder-binaries, which this machine cannot reach.
  Where both are available: npx electron-builder --linux AppImage --prepackaged $UNPACKED --config build/electron-builder.cjs"
	fi
	local cache=${ELECTRON_BUILDER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/electron-builder}
	if [ "${ICMPCAP_OFFLINE:-}" = 1 ] && ! compgen -G "$cache/appimage/*" >/dev/null; then
		cannot "AppImage: not built: ICMPCAP_OFFLINE=1 and electron-builder's AppImage runtime is not in its cache
  ($cache/appimage); the unpacked app directory $UNPACKED passed its checks. Where the network allows, run
  npm run package:appimage (electron-builder downloads the runtime once)."
	fi
	log "electron-builder --linux AppImage --prepackaged $UNPACKED"
	if ! ICMPCAP_ELECTRON_DIST=$ELECTRON_DIST npx --no-install electron-builder --linux AppImage \
		--prepackaged "$UNPACKED" --config build/electron-builder.cjs \
		"-c.directories.output=$OUT" "-c.linux.icon=$ICONS" >"$OUT/electron-builder-appimage.log" 2>&1; then
		if grep -qiE 'download|ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|getaddrinfo|socket hang up' "$OUT/electron-builder-appimage.log"; then
			cannot "AppImage: not built: electron-builder could not download the AppImage runtime (appimage tools
  from github.com/electron-userland/electron-builder-binaries); the unpacked app directory passed its checks.
  Log: $OUT/electron-builder-appimage.log"
		fi
		die "electron-builder --linux AppImage failed (log: $OUT/electron-builder-appimage.log)"
	fi
	log "built $(ls "$OUT"/*.AppImage)"
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(dkms deb appimage)
need_tools dpkg-deb fakeroot node file
mkdir -p "$OUT" "$WORK"
status=0
for t in "${targets[@]}"; do
	case "$t" in
	dkms) package_dkms ;;
	deb) (package_app) || status=$? ;;
	appimage) (package_appimage) || status=$? ;;
	*) die "unknown target $t (dkms, deb, appimage)" ;;
	esac
	[ $status = 0 ] || [ $status = 3 ] || exit $status
done
exit $status
