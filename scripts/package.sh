#!/usr/bin/env bash
# Builds the Debian packages from this checkout with dpkg-deb:
#   redline_VERSION_ARCH.deb      redlined, redlinectl, unit, sysusers/tmpfiles, profiles, docs, man pages
#   redline-sim_VERSION_ARCH.deb  the plant simulator and its unit (test and demo machines only;
#                                 never on a controller: it serves fake devices)
#
#   scripts/package.sh [--out DIR] [--version V] [--bin-dir DIR] [--no-sim] [--lint]
#
#   --out DIR      where the .debs go (default: dist/)
#   --version V    package version (default: 0.1.0~gitN.SHA, N = commits on HEAD: grows with every commit)
#   --bin-dir DIR  take redlined, redlinectl (and redline-sim) from DIR instead of building them
#                  (the rig repackages the same binaries under a newer version for its upgrade check)
#   --also-version V2  also build the same packages again as version V2 (the rig's upgrade check)
#   --no-sim       no redline-sim package
#   --lint         run lintian on the result (installs lintian when missing); exit non-zero on an
#                  error or warning that is not explained in scripts/package/lintian-overrides
#
# Binaries: swift build -c release --static-swift-stdlib (the Swift runtime inside; only glibc,
# libmodbus5 and libgpiod2 from Debian), in the shared release scratch path .build-release
# (REDLINE_RELEASE_SCRATCH; the GPIO rig and scripts/build-release.sh build there too).
# REDLINE_PKG_CONFIG=debug builds -c debug instead (much faster while developing the rig; never
# for a release: the package's Description then says so).
# REDLINE_PKG_COMPRESS=gzip|xz: the .deb compression (default xz; gzip for a debug build).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PKGSRC=$ROOT/scripts/package
OUT=$ROOT/dist
VERSION=""
BIN_DIR=""
SIM=1
LINT=0
ALSO_VERSION=""
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT=$2; shift 2 ;;
        --version) VERSION=$2; shift 2 ;;
        --bin-dir) BIN_DIR=$2; shift 2 ;;
        --no-sim) SIM=0; shift ;;
        --also-version) ALSO_VERSION=$2; shift 2 ;;
        --lint) LINT=1; shift ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "package.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
export PATH="/opt/swift/usr/bin:$PATH"
CONFIG=${REDLINE_PKG_CONFIG:-release}
case "$CONFIG" in release|debug) ;; *) echo "package.sh: REDLINE_PKG_CONFIG is release or debug" >&2; exit 2 ;; esac
log() { echo "package.sh: $*" >&2; }

for tool in dpkg-deb dpkg-shlibdeps fakeroot; do
    command -v "$tool" >/dev/null || { log "installing dpkg-dev fakeroot"; apt-get install -y -qq --no-install-recommends dpkg-dev fakeroot >/dev/null; break; }
done

if [ -z "$VERSION" ]; then
    VERSION="0.1.0~git$(git -C "$ROOT" rev-list --count HEAD).$(git -C "$ROOT" rev-parse --short=7 HEAD)"
fi
ARCH=$(dpkg --print-architecture)
MAINTAINER=${REDLINE_MAINTAINER:-The Redline authors <redline@localhost>}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/redline-pkg.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# ---- binaries -------------------------------------------------------------------------------
# One function, so that scripts/build-release.sh can replace it once it is on main.
build_binaries() {   # $1 = destination folder; products follow
    local dest=$1; shift
    # The release scratch path the GPIO rig and scripts/build-release.sh use too (same flags): in CI
    # the rig has already built redlined and redline-sim there, so this adds only redlinectl.
    local scratch=${REDLINE_RELEASE_SCRATCH:-.build-release} extra=()
    case "$scratch" in /*) ;; *) scratch=$ROOT/$scratch ;; esac
    # debug shares the ordinary .build (already built by swift build / swift test: only relinks)
    # A debug link keeps FoundationNetworking (pulled in through the MCP SDK), whose static archive
    # needs its CF interface and libcurl after it on the link line.
    [ "$CONFIG" = debug ] && { scratch=$ROOT/.build; extra=(-Xlinker -l_CFURLSessionInterface -Xlinker -lcurl); }
    for p in "$@"; do
        log "swift build -c $CONFIG --static-swift-stdlib --scratch-path $scratch --product $p"
        (cd "$ROOT" && swift build -c "$CONFIG" --static-swift-stdlib --scratch-path "$scratch" "${extra[@]}" --product "$p" \
            >"$WORK/build-$p.log" 2>&1) || { tail -40 "$WORK/build-$p.log" >&2; exit 1; }
    done
    local bin
    bin=$(cd "$ROOT" && swift build -c "$CONFIG" --static-swift-stdlib --scratch-path "$scratch" "${extra[@]}" --show-bin-path)
    for p in "$@"; do cp "$bin/$p" "$dest/$p"; done
}
PRODUCTS="redlined redlinectl"
[ $SIM = 1 ] && PRODUCTS="$PRODUCTS redline-sim"
BINS=$WORK/bin
mkdir -p "$BINS"
if [ -n "$BIN_DIR" ]; then
    for p in $PRODUCTS; do cp "$BIN_DIR/$p" "$BINS/$p"; done
else
    # shellcheck disable=SC2086
    build_binaries "$BINS" $PRODUCTS
fi
for p in $PRODUCTS; do
    strip --strip-unneeded --remove-section=.comment --remove-section=.note "$BINS/$p"
    # A static Swift runtime: nothing of libswift*.so may be needed at run time.
    if ldd "$BINS/$p" | grep -q 'libswift\|libFoundation\|libdispatch'; then
        log "$p links the Swift runtime dynamically:"; ldd "$BINS/$p" >&2; exit 1
    fi
done

# ---- man pages from the --help texts (swift-argument-parser's generator) ------------------------
# The generate-manual plugin (`swift package generate-manual --product X`) always rebuilds X in
# release in .build, which costs a second full release build of every binary; so this runs the
# plugin's own tool (the `generate-manual` executable of swift-argument-parser, built offline from
# the checked-out dependency) on the binaries just built: the same mdoc(7) output, from the same
# `--experimental-dump-help` data the plugin uses.
MAN=$WORK/man
mkdir -p "$MAN"
(cd "$ROOT" && swift build --product generate-manual >"$WORK/build-generate-manual.log" 2>&1) \
    || { tail -20 "$WORK/build-generate-manual.log" >&2; log "cannot build generate-manual"; exit 1; }
GENMAN=$(cd "$ROOT" && swift build --show-bin-path)/generate-manual
MANDATE=$(git -C "$ROOT" log -1 --format=%cs HEAD)
gen_manual() {   # $1 = product, $2 = section
    "$GENMAN" "$BINS/$1" --section "$2" --date "$MANDATE" --authors "The Redline authors" \
        --output-directory "$MAN" >"$WORK/man-$1.log" 2>&1 || { cat "$WORK/man-$1.log" >&2; exit 1; }
}
gen_manual redlined 8
gen_manual redlinectl 1
[ $SIM = 1 ] && gen_manual redline-sim 1
# mdoc has no blank lines (groff warns on each); the generator leaves some between paragraphs.
sed -i '/^[[:space:]]*$/d' "$MAN"/*.[18]
ls "$MAN"/redlined.8 "$MAN"/redlinectl.1 >/dev/null

# ---- the redline package ----------------------------------------------------------------------
desc_suffix=""
[ "$CONFIG" = debug ] && desc_suffix=" (debug build)"
stage_common_doc() {   # $1 = staging root, $2 = package name
    local d=$1/usr/share/doc/$2
    install -d -m 0755 "$d"
    install -m 0644 "$PKGSRC/copyright" "$d/copyright"
    sed -e "s/@VERSION@/$VERSION/" -e "s/@DATE@/$(git -C "$ROOT" log -1 --format=%aD HEAD)/" \
        -e "s/@PACKAGE@/$2/" -e "s/@MAINTAINER@/$MAINTAINER/" "$PKGSRC/changelog.in" | gzip -9n >"$d/changelog.gz"
    chmod 0644 "$d/changelog.gz"
}

R=$WORK/redline
install -d -m 0755 "$R/DEBIAN" "$R/usr/sbin" "$R/usr/bin" "$R/lib/systemd/system" "$R/usr/lib/sysusers.d" \
    "$R/usr/lib/tmpfiles.d" "$R/usr/share/redline/devices" "$R/etc/redline" "$R/etc/redline/devices" \
    "$R/usr/share/man/man1" "$R/usr/share/man/man8" "$R/usr/share/doc/redline/examples"
install -m 0755 "$BINS/redlined" "$R/usr/sbin/redlined"
install -m 0755 "$BINS/redlinectl" "$R/usr/bin/redlinectl"
install -m 0644 "$ROOT/Firmware-Configs/systemd/redlined.service" "$R/lib/systemd/system/redlined.service"
install -m 0644 "$PKGSRC/redline.sysusers" "$R/usr/lib/sysusers.d/redline.conf"
install -m 0644 "$PKGSRC/redline.tmpfiles" "$R/usr/lib/tmpfiles.d/redline.conf"
install -m 0644 "$ROOT"/Devices/*.yaml "$R/usr/share/redline/devices/"
install -m 0644 "$PKGSRC/redlined.conf" "$R/etc/redline/redlined.conf"
install -m 0644 "$PKGSRC/devices-README" "$R/etc/redline/devices/README"
gzip -9nc "$MAN/redlined.8" >"$R/usr/share/man/man8/redlined.8.gz"
gzip -9nc "$MAN/redlinectl.1" >"$R/usr/share/man/man1/redlinectl.1.gz"
stage_common_doc "$R" redline
install -m 0644 "$ROOT/README.md" "$R/usr/share/doc/redline/README.md"
install -m 0644 "$ROOT/docs/DESIGN.md" "$ROOT/docs/THREAT-MODEL.md" "$R/usr/share/doc/redline/"
install -m 0644 "$ROOT"/Firmware-Configs/*.yaml "$R/usr/share/doc/redline/examples/"
install -m 0644 "$ROOT/Firmware-Configs/udev/60-redline.rules" "$R/usr/share/doc/redline/examples/60-redline.rules"
install -m 0644 "$PKGSRC/nftables-include.conf" "$R/usr/share/doc/redline/examples/nftables-include.conf"
find "$R/usr/share/doc/redline" -name '*.md' -size +4k -exec gzip -9n {} \;
printf '/etc/redline/redlined.conf\n/etc/redline/devices/README\n' >"$R/DEBIAN/conffiles"
for s in postinst prerm postrm; do
    install -m 0755 "$PKGSRC/redline.$s" "$R/DEBIAN/$s"
done

# Depends: what the binaries link, as dpkg-shlibdeps sees it (libc6, libmodbus5, libgpiod2).
shlibdeps() {   # $1 = staging root; binaries follow (relative to it)
    local root=$1; shift
    mkdir -p "$root/debian"
    : >"$root/debian/control"
    (cd "$root" && dpkg-shlibdeps -O --ignore-missing-info "$@" 2>"$WORK/shlibdeps.err") \
        | sed -n 's/^shlibs:Depends=//p'
    rm -rf "$root/debian"
}
DEPS=$(shlibdeps "$R" usr/sbin/redlined usr/bin/redlinectl)
for need in libmodbus5 libgpiod2; do
    echo "$DEPS" | grep -q "$need" || { log "dpkg-shlibdeps found no $need in: $DEPS"; cat "$WORK/shlibdeps.err" >&2; exit 1; }
done
installed_size() { du -sk --exclude=DEBIAN "$1" | cut -f1; }
cat >"$R/DEBIAN/control" <<EOF
Package: redline
Version: $VERSION
Architecture: $ARCH
Maintainer: $MAINTAINER
Installed-Size: $(installed_size "$R")
Depends: $DEPS, systemd (>= 247)
Section: admin
Priority: optional
Homepage: https://github.com/redline-bms/redline
Description: safety interlock daemon for building controllers$desc_suffix
 redlined is the only process on a building-management controller that touches
 the plant (Modbus RTU/TCP devices, GPIO lines). AI agents and other programs
 ask it over a local socket; every write passes compiled-in red lines (egress,
 fire alarm, suppression, life support), may need a human's approval, and is
 written to a tamper-evident audit log. redlinectl checks sites, talks to the
 daemon, generates the firewall and udev rules, and checks the host.
EOF

# ---- the redline-sim package -------------------------------------------------------------------
S=$WORK/redline-sim
if [ $SIM = 1 ]; then
    install -d -m 0755 "$S/DEBIAN" "$S/usr/bin" "$S/lib/systemd/system" "$S/etc/redline-sim" "$S/usr/share/man/man1"
    install -m 0755 "$BINS/redline-sim" "$S/usr/bin/redline-sim"
    install -m 0644 "$PKGSRC/redline-sim.service" "$S/lib/systemd/system/redline-sim.service"
    gzip -9nc "$MAN/redline-sim.1" >"$S/usr/share/man/man1/redline-sim.1.gz"
    stage_common_doc "$S" redline-sim
    SDEPS=$(shlibdeps "$S" usr/bin/redline-sim)
    cat >"$S/DEBIAN/control" <<EOF
Package: redline-sim
Version: $VERSION
Architecture: $ARCH
Maintainer: $MAINTAINER
Installed-Size: $(installed_size "$S")
Depends: $SDEPS, redline (= $VERSION)
Section: misc
Priority: optional
Homepage: https://github.com/redline-bms/redline
Description: plant simulator for Redline tests and demos$desc_suffix
 redline-sim serves every Modbus device of a Redline site from a plant model
 (rooms, CRAC units, fire panel, dispatch gateway, doors, suppression), with a
 control socket to act on the simulated physical world. For test benches,
 demos and CI only: installed on a controller it would answer for real devices.
EOF
fi

# ---- build the .debs ------------------------------------------------------------------------------
DEBS=""
# xz for release; gzip for a debug build (100 MB of debug binaries take xz many minutes).
# REDLINE_PKG_COMPRESS=gzip|xz overrides it: the systemd rig uses gzip (fast), because xz of the
# ~190 MB of static binaries costs about 2 minutes per package on the 2-core CI machine, and
# unpacking xz under emulation is slow too; the format is dpkg-deb's concern, not the package's.
COMPRESS=${REDLINE_PKG_COMPRESS:-$([ "$CONFIG" = debug ] && echo gzip || echo xz)}
case "$COMPRESS" in
    xz) ZOPT=(-Zxz) ;;
    gzip) ZOPT=(-Zgzip -z1) ;;
    *) log "REDLINE_PKG_COMPRESS is gzip or xz"; exit 2 ;;
esac
build_debs() {   # $1 = version
    local v=$1 pkg dir deb
    for pkg in redline redline-sim; do
        [ "$pkg" = redline-sim ] && [ $SIM = 0 ] && continue
        dir=$WORK/$pkg
        sed -i -e "s/^Version: .*/Version: $v/" -e "s/redline (= [^)]*)/redline (= $v)/" "$dir/DEBIAN/control"
        sed -e "s/@VERSION@/$v/" -e "s/@DATE@/$(git -C "$ROOT" log -1 --format=%aD HEAD)/" \
            -e "s/@PACKAGE@/$pkg/" -e "s/@MAINTAINER@/$MAINTAINER/" "$PKGSRC/changelog.in" | gzip -9n >"$dir/usr/share/doc/$pkg/changelog.gz"
        find "$dir" -path "$dir/DEBIAN" -prune -o -type f -printf '%P\0' | sort -z \
            | (cd "$dir" && xargs -0 md5sum) >"$dir/DEBIAN/md5sums"
        chmod 0644 "$dir/DEBIAN/md5sums" "$dir/DEBIAN/control" "$dir/usr/share/doc/$pkg/changelog.gz"
        [ -f "$dir/DEBIAN/conffiles" ] && chmod 0644 "$dir/DEBIAN/conffiles"
        deb=$OUT/${pkg}_${v}_${ARCH}.deb
        local t0; t0=$(date +%s)
        fakeroot dpkg-deb "${ZOPT[@]}" --build "$dir" "$deb" >/dev/null
        log "built $deb ($(du -h "$deb" | cut -f1), $COMPRESS, $(( $(date +%s) - t0 )) s)"
        DEBS="$DEBS $deb"
    done
}
build_debs "$VERSION"
[ -n "$ALSO_VERSION" ] && build_debs "$ALSO_VERSION"

if [ $LINT = 1 ]; then
    command -v lintian >/dev/null || { log "installing lintian"; apt-get install -y -qq --no-install-recommends lintian >/dev/null; }
    lrc=0
    # shellcheck disable=SC2086
    lintian --fail-on error,warning --suppress-tags-from-file "$PKGSRC/lintian-overrides" --info $DEBS || lrc=$?
    [ $lrc = 0 ] || { log "lintian: errors or warnings not explained in scripts/package/lintian-overrides"; exit $lrc; }
    log "lintian: clean (apart from the tags explained in scripts/package/lintian-overrides)"
fi
echo "$DEBS" | tr ' ' '\n' | sed '/^$/d'
