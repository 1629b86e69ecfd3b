#!/usr/bin/env bash
# Installs libchathub as a C library (`make install`, `make uninstall`):
#
#   PREFIX/include/chathub.h
#   PREFIX/lib/libchathub.so.X.Y.Z       SONAME libchathub.so.0.Y while 0.x,
#   PREFIX/lib/libchathub.so.0.Y  ->     libchathub.so.X from 1.0
#   PREFIX/lib/libchathub.so      ->     (the link the linker's -lchathub finds)
#   PREFIX/lib/libchathub.a
#   PREFIX/lib/pkgconfig/chathub.pc         shared: pkg-config --libs chathub
#   PREFIX/lib/pkgconfig/chathub-static.pc  static: pkg-config --static --libs chathub-static
#   PREFIX/share/chathub/socket.io-client/  the client bundle the hub serves
#                                           (found there at run time, relative
#                                           to the library or the program)
#
# Usage: scripts/install-c.sh [install|uninstall]
# Variables: PREFIX (default /usr/local), LIBDIR (default PREFIX/lib),
# INCLUDEDIR, DATADIR, DESTDIR (a staging root, as packagers use it),
# CARGO_TARGET_DIR. Builds libchathub in release first (cargo decides what
# needs rebuilding). The bundle comes from node_modules/socket.io-client
# (`npm ci` at the repository's root puts it there); without it the
# install goes on and says the hub will answer 404 for the bundle.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
action="${1:-install}"

PREFIX="${PREFIX:-/usr/local}"
case "$PREFIX" in /*) ;; *) echo "install: PREFIX must be an absolute path (got $PREFIX)" >&2; exit 2 ;; esac
LIBDIR="${LIBDIR:-$PREFIX/lib}"
INCLUDEDIR="${INCLUDEDIR:-$PREFIX/include}"
DATADIR="${DATADIR:-$PREFIX/share}"
DESTDIR="${DESTDIR:-}"
TARGET_DIR="$(realpath -m "${CARGO_TARGET_DIR:-target}")"

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
IFS=. read -r major minor _patch <<<"$version"
if [ "$major" = 0 ]; then soname="libchathub.so.0.$minor"; else soname="libchathub.so.$major"; fi
real="libchathub.so.$version"
# What a Rust static library needs from the system (rustc --print native-static-libs).
syslibs="-lpthread -ldl -lm -lrt -lutil"

lib="$DESTDIR$LIBDIR"
inc="$DESTDIR$INCLUDEDIR"
share="$DESTDIR$DATADIR/chathub"
pc="$lib/pkgconfig"

if [ "$action" = uninstall ]; then
  rm -f "$inc/chathub.h" "$lib/libchathub.a" "$lib/libchathub.so" "$lib/$soname" "$lib/$real" \
        "$pc/chathub.pc" "$pc/chathub-static.pc"
  rm -rf "$share"
  echo "libchathub $version removed from $DESTDIR$PREFIX"
  exit 0
fi
[ "$action" = install ] || { echo "usage: $0 [install|uninstall]" >&2; exit 2; }

cargo build --quiet --release -p chathub-ffi
built="$TARGET_DIR/release"

install -d "$inc" "$lib" "$pc"
install -m 644 include/chathub.h "$inc/chathub.h"
install -m 644 "$built/libchathub.a" "$lib/libchathub.a"
install -m 755 "$built/libchathub.so" "$lib/$real"
ln -sfn "$real" "$lib/$soname"
ln -sfn "$soname" "$lib/libchathub.so"

# The .pc files name the final prefix, not DESTDIR.
write_pc() { # name description libs libs_private
  cat >"$pc/$1.pc" <<EOF
prefix=$PREFIX
includedir=$INCLUDEDIR
libdir=$LIBDIR

Name: $1
Description: $2
Version: $version
Cflags: -I\${includedir}
Libs: $3
EOF
  if [ -n "$4" ]; then echo "Libs.private: $4" >>"$pc/$1.pc"; fi
}
write_pc chathub "An embeddable Socket.IO chat hub (C ABI), shared library" \
  "-L\${libdir} -lchathub" "$syslibs"
# A linker that finds libchathub.so beside libchathub.a takes the shared
# one for -lchathub, whatever --static says; this module names the archive.
write_pc chathub-static "An embeddable Socket.IO chat hub (C ABI), static library" \
  "\${libdir}/libchathub.a $syslibs" ""

dist="$ROOT/node_modules/socket.io-client/dist"
if [ -f "$dist/socket.io.js" ]; then
  install -d "$share/socket.io-client"
  # The files the hub serves (core/src/assets.rs, BUNDLE_FILES).
  for f in socket.io.js socket.io.min.js socket.io.esm.min.js \
           socket.io.js.map socket.io.min.js.map socket.io.esm.min.js.map; do
    if [ -f "$dist/$f" ]; then install -m 644 "$dist/$f" "$share/socket.io-client/$f"; fi
  done
  if [ -f "$ROOT/node_modules/socket.io-client/LICENSE" ]; then
    install -m 644 "$ROOT/node_modules/socket.io-client/LICENSE" "$share/socket.io-client/LICENSE"
  fi
else
  echo "install: node_modules/socket.io-client is missing (run npm ci at the repository's root);" >&2
  echo "         installed hubs will answer 404 for /socket.io/socket.io.js unless told where it is" >&2
fi

echo "libchathub $version installed in $DESTDIR$PREFIX (SONAME $soname)"
