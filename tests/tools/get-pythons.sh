#!/bin/bash
# tests/tools/get-pythons.sh [DEST] [--refresh]
#
# Provides the CPython interpreters the test matrix needs that Debian 12
# (bookworm) does not ship -- 3.14 and 3.15 by default, PYVERSIONS="3.14 3.15"
# to change -- by taking them from Debian sid, without installing anything:
#
#   * a private apt state under DEST/.cache/apt is used only for
#     `apt-get update` and `apt-get download` (the system's dpkg database,
#     apt lists and caches are never written);
#   * the .debs (python3.X, its -minimal/-stdlib parts, and the closure of the
#     runtime libraries they depend on, including sid's libc6) are unpacked
#     with `dpkg-deb -x` into DEST/sid;
#   * sid's interpreters need a newer glibc than bookworm's, so each binary is
#     pointed at DEST/sid's own ld-linux-x86-64.so.2 with bookworm's patchelf
#     (0.14; sid's 0.18 breaks these non-PIE binaries), plus a DT_RPATH
#     (--force-rpath, which also covers libraries of dlopen()ed extension
#     modules) to DEST/sid's library directory.  The patched binary runs
#     directly, so /proc/PID/exe is the interpreter itself, which is what an
#     out-of-process inspector needs.
#
# Debug symbols: the interpreters are stripped, so their static functions (the
# eval loop among them) have no names.  sid's python3.X-dbg packages (main
# archive, same version as the interpreter) hold separate debug files by
# build-id; only their usr/lib/debug/.build-id trees are unpacked, into
# DEST/debug/.build-id (a debug directory as gdb and pyspy-repl's
# PYSPY_REPL_DEBUG_DIRS take it).  Set GET_PYTHONS_DBG=0 to skip them; a
# version whose -dbg package is missing is reported on stderr and left out.
#
# DEST defaults to ${PYSPY_REPL_PYTHONS:-$HOME/.cache/pyspy-repl/pythons}.
# stdout: one interpreter path per line (DEST/bin/python3.X); logs: stderr.
# A version missing from sid is reported on stderr and left out.
# Exit status: 0 if at least one interpreter works, 1 otherwise, 2 on usage.
#
# Idempotent and cheap on the second run: DEST/.stamp records what was
# installed; when it matches, only a smoke test runs (no network).  A broken
# tree or a moved DEST is detected (smoke test / stamp) and rebuilt.
# Concurrent runs on the same DEST are serialised with flock.
# Environment: PYVERSIONS, SID_SUITE (default sid), DEBIAN_MIRROR (default:
# the first mirror of this machine's own apt sources).
set -euo pipefail
shopt -s nullglob

FORMAT=2           # bump when the layout of DEST changes
DEST=""
REFRESH=0
for arg in "$@"; do
  case $arg in
    --refresh) REFRESH=1 ;;
    -h|--help) sed -n '2,40p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "get-pythons: unknown option $arg" >&2; exit 2 ;;
    *) if [ -n "$DEST" ]; then echo "get-pythons: more than one DEST given" >&2; exit 2; fi
       DEST=$arg ;;
  esac
done
DEST=${DEST:-${PYSPY_REPL_PYTHONS:-$HOME/.cache/pyspy-repl/pythons}}
WANT_VERSIONS=${PYVERSIONS:-3.14 3.15}
SUITE=${SID_SUITE:-sid}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

say() { printf 'get-pythons: %s\n' "$*" >&2; }
fail() { say "ERROR: $*"; exit 1; }

for tool in apt-get apt-cache dpkg-deb flock sha256sum readelf; do
  command -v "$tool" >/dev/null || fail "needs '$tool' (a Debian-like host)"
done
[ "$(dpkg --print-architecture 2>/dev/null || echo amd64)" = amd64 ] || fail "only amd64 hosts are supported"

mkdir -p "$DEST"
DEST=$(cd "$DEST" && pwd -P)
case $DEST in *[:\ ]*) fail "DEST must not contain ':' or spaces: $DEST" ;; esac
TREE=$DEST/sid
LIB=$TREE/usr/lib/x86_64-linux-gnu
CACHE=$DEST/.cache
STAMP=$DEST/.stamp
mkdir -p "$CACHE"

# One run at a time per DEST.
exec {lockfd}>"$CACHE/lock"
flock "$lockfd"

# ---------------------------------------------------------------- smoke test
SMOKE_PY='
import asyncio, ctypes, decimal, hashlib, json, os, sqlite3, ssl, subprocess, sys, threading, zlib
assert json.loads(json.dumps({"k": [1, "\u00e9"]})) == {"k": [1, "\u00e9"]}
th = threading.Thread(target=lambda: None); th.start(); th.join()
asyncio.run(asyncio.sleep(0))
assert ctypes.CDLL(None).getpid() == os.getpid()
ssl.create_default_context(); sqlite3.connect(":memory:").execute("select 1")
assert str(decimal.Decimal(3) / 4) == "0.75"
assert hashlib.sha256(b"").hexdigest().startswith("e3b0") and zlib.decompress(zlib.compress(b"x")) == b"x"
subprocess.check_call([sys.executable, "-c", "import json, ctypes"])
assert os.path.realpath("/proc/self/exe") == os.path.realpath(sys.executable)
dest = os.environ["GET_PYTHONS_DEST"] + "/"
maps = open("/proc/self/maps").read().split()
loader = [m for m in maps if m.endswith("/ld-linux-x86-64.so.2")]
assert loader and all(m.startswith(dest) for m in loader), ("loader outside DEST (moved?)", loader)
'
smoke() {  # smoke PATH...: every interpreter must pass
  local py out ok=0
  for py in "$@"; do
    if ! out=$(GET_PYTHONS_DEST=$DEST "$py" -c "$SMOKE_PY" 2>&1); then
      say "smoke test failed for $py: $out"; ok=1
    fi
  done
  return $ok
}

settings="format=$FORMAT dest=$DEST suite=$SUITE versions=$WANT_VERSIONS"
DEBUG=$DEST/debug
DBG=${GET_PYTHONS_DBG:-1}
FAST=()
# the debug trees are complete when their stamp names every wanted version (or they are not wanted)
debug_ready() {
  [ "$DBG" = 0 ] && return 0
  local v
  for v in $WANT_VERSIONS; do
    grep -qx "python$v-dbg.*" "$DEBUG/.stamp" 2>/dev/null || return 1
  done
}

# ---------------------------------------------------------------- fast path
# Nothing to do when our stamp says this DEST is complete, or when every wanted
# version is already there and works (e.g. installed by an earlier variant of
# this step): only the smoke test runs, no network.
if [ $REFRESH = 0 ]; then
  have=()
  if [ -f "$STAMP" ] && [ "$(head -n 1 "$STAMP")" = "$settings" ]; then
    mapfile -t have < <(sed -n 's/^python=//p' "$STAMP")
  else
    for v in $WANT_VERSIONS; do
      if [ -x "$DEST/bin/python$v" ]; then have+=("$DEST/bin/python$v"); else have=(); break; fi
    done
  fi
  if [ ${#have[@]} -gt 0 ]; then
    if smoke "${have[@]}"; then
      say "already installed in $DEST"
      if debug_ready; then
        printf '%s\n' "${have[@]}"
        exit 0
      fi
      FAST=("${have[@]}")   # only the debug symbols are missing: fetched below
    fi
    if [ ${#FAST[@]} -eq 0 ]; then
      say "installed interpreters do not work (any more); rebuilding"
      rm -f "$STAMP"
    fi
  fi
fi

# ---------------------------------------------------------------- private apt
host_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    awk 'tolower($1) == "uris:" {print $2; exit}' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] && awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\//) {print $i; break}}' "$f"
  done
}
MIRROR=${DEBIAN_MIRROR:-$(host_mirror | grep -v -e -security -e security\\. | head -n 1 || true)}
[ -n "$MIRROR" ] || fail "no Debian mirror in this machine's apt sources; set DEBIAN_MIRROR"
[ -r "$KEYRING" ] || fail "missing $KEYRING (package debian-archive-keyring)"

APTDIR=$CACHE/apt
DEBS=$CACHE/debs
TOOLS=$CACHE/tools
mkdir -p "$APTDIR/sources.list.d" "$APTDIR/preferences.d" "$APTDIR/lists/partial" \
         "$APTDIR/archives/partial" "$DEBS" "$TOOLS"
printf 'deb [signed-by=%s] %s %s main\n' "$KEYRING" "$MIRROR" "$SUITE" "$KEYRING" "$MIRROR" bookworm \
  > "$APTDIR/sources.list"
: > "$APTDIR/status"
APTOPTS=(
  -o "Dir::Etc::SourceList=$APTDIR/sources.list"
  -o "Dir::Etc::SourceParts=$APTDIR/sources.list.d"
  -o "Dir::Etc::Preferences=$APTDIR/preferences"
  -o "Dir::Etc::PreferencesParts=$APTDIR/preferences.d"
  -o "Dir::State=$APTDIR" -o "Dir::State::Lists=$APTDIR/lists"
  -o "Dir::State::status=$APTDIR/status"
  -o "Dir::Cache=$APTDIR" -o "Dir::Cache::archives=$APTDIR/archives"
  -o "Dir::Cache::pkgcache=$APTDIR/pkgcache.bin" -o "Dir::Cache::srcpkgcache="
  -o "APT::Architecture=amd64" -o "APT::Architectures=amd64"
  -o "Acquire::Languages=none" -o "APT::Sandbox::User=root" -q
)
apt_update() {
  say "reading the $SUITE and bookworm indexes (apt state in $APTDIR)"
  rm -f "$APTDIR/pkgcache.bin"
  apt-get "${APTOPTS[@]}" update >&2 || fail "apt-get update failed"
}
if [ $REFRESH = 1 ] || [ -z "$(echo "$APTDIR"/lists/*_dists_"$SUITE"_*Packages*)" ]; then
  apt_update
fi

in_index() { apt-cache "${APTOPTS[@]}" show --no-all-versions "$1" >/dev/null 2>&1; }

# ---------------------------------------------------------------- debug symbols
# fetch_debug V...: python3.V-dbg of the same version as the unpacked interpreter, its
# usr/lib/debug/.build-id tree only, into DEST/debug/.build-id (never fatal).
fetch_debug() {
  [ "$DBG" = 0 ] && return 0
  local v pkg version deb have=() new=$DEST/.debug.new
  rm -rf "$new" && mkdir -p "$new"
  for v in "$@"; do
    pkg=python$v-dbg
    version=$(dpkg-deb -f "$(echo "$DEBS"/python"$v"-minimal_*.deb | cut -d' ' -f1)" Version 2>/dev/null || true)
    if [ -z "$version" ] || ! apt-cache "${APTOPTS[@]}" show "$pkg=$version" >/dev/null 2>&1; then
      say "WARNING: $pkg${version:+ $version} is not in $SUITE; python$v keeps its stripped symbols"
      continue
    fi
    deb=$(echo "$DEBS"/"$pkg"_*.deb | cut -d' ' -f1)
    if [ ! -s "$deb" ] || [ "$(dpkg-deb -f "$deb" Version 2>/dev/null)" != "$version" ]; then
      rm -f "$DEBS"/"$pkg"_*.deb
      say "downloading $pkg $version (debug symbols)"
      (cd "$DEBS" && apt-get "${APTOPTS[@]}" download "$pkg=$version" >&2) || {
        say "WARNING: $pkg download failed; python$v keeps its stripped symbols"; continue; }
      deb=$(echo "$DEBS"/"$pkg"_*.deb | cut -d' ' -f1)
    fi
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$new" --strip-components=4 --wildcards './usr/lib/debug/.build-id/*' \
      || { say "WARNING: $deb has no usr/lib/debug/.build-id"; continue; }
    have+=("$pkg $version")
  done
  [ ${#have[@]} -gt 0 ] || { rm -rf "$new"; return 0; }
  printf '%s\n' "${have[@]}" > "$new/.stamp"
  rm -rf "$DEBUG" && mv "$new" "$DEBUG"
  say "debug symbols of ${have[*]} in $DEBUG/.build-id"
}

if [ ${#FAST[@]} -gt 0 ]; then
  fetch_debug $WANT_VERSIONS
  printf '%s\n' "${FAST[@]}"
  exit 0
fi

# ---------------------------------------------------------------- what to fetch
versions=()
roots=()
for v in $WANT_VERSIONS; do
  if ! in_index "python$v-minimal"; then
    say "WARNING: python$v is not available in $SUITE; left out"
    continue
  fi
  versions+=("$v")
  roots+=("python$v" "python$v-minimal" "libpython$v-minimal" "libpython$v-stdlib")
done
[ ${#versions[@]} -gt 0 ] || fail "none of the versions '$WANT_VERSIONS' is in $SUITE"

# Depends/Pre-Depends closure restricted to shared-library packages (skips
# tzdata, media-types, netbase, debconf and other non-runtime packages).
closure() {
  local -A done_=()
  local -a todo=("$@") next deps
  local p d
  while [ ${#todo[@]} -gt 0 ]; do
    next=()
    for p in "${todo[@]}"; do [ -n "${done_[$p]:-}" ] || { done_[$p]=1; echo "$p"; }; done
    mapfile -t deps < <(apt-cache "${APTOPTS[@]}" depends --important "${todo[@]}" 2>/dev/null |
                        sed -n 's/^ *|\{0,1\}\(Pre\)\{0,1\}Depends: \([^ <>]*\)$/\2/p' | sort -u)
    for d in "${deps[@]}"; do
      [ -z "${done_[$d]:-}" ] || continue
      [[ $d =~ ^(lib[a-z0-9].*|zlib1g)$ ]] || continue
      [[ $d =~ (-dev|-doc|-bin|-l10n)$ || $d =~ ^(libc-gconv-modules-extra|libtcl8\.6|libtk8\.6)$ ]] && continue
      next+=("$d")
    done
    todo=("${next[@]}")
  done
}
mapfile -t packages < <(closure "${roots[@]}" libc6)
say "packages: ${packages[*]}"

# "URI FILE SIZE SHA256:HASH" per package; --print-uris leaves out files present
# in the current directory, hence the empty directory.
print_uris() {
  local d=$CACHE/empty
  rm -rf "$d" && mkdir -p "$d"
  (cd "$d" && apt-get "${APTOPTS[@]}" download --print-uris "${packages[@]}" patchelf/bookworm)
}
uris=$(print_uris) || { apt_update; uris=$(print_uris) || fail "cannot resolve the package files"; }

fetch_missing() {  # downloads every file whose cached copy is absent or has the wrong hash
  local uri file size hash names=()
  while read -r uri file size hash; do
    [ -n "$file" ] || continue
    hash=${hash#SHA256:}
    if [ -s "$DEBS/$file" ] && [ "$(sha256sum < "$DEBS/$file" | cut -d' ' -f1)" = "$hash" ]; then
      continue
    fi
    rm -f "$DEBS/$file"
    if [ "${file%%_*}" = patchelf ]; then names+=(patchelf/bookworm); else names+=("${file%%_*}"); fi
  done <<< "$uris"
  [ ${#names[@]} -gt 0 ] || return 0
  say "downloading ${#names[@]} packages"
  (cd "$DEBS" && apt-get "${APTOPTS[@]}" download "${names[@]}" >&2)
}
if ! fetch_missing; then
  say "download failed (sid moves daily; the index may be stale): refreshing and retrying"
  apt_update
  uris=$(print_uris) || fail "cannot resolve the package files"
  fetch_missing || fail "download failed"
fi

mapfile -t files < <(awk 'NF >= 2 {print $2}' <<< "$uris" | sort)
[ ${#files[@]} -gt 0 ] || fail "no package files resolved"
# keep the cache to what is wanted now
declare -A wanted=()
for f in "${files[@]}"; do wanted[$f]=1; done
for f in "$DEBS"/*.deb; do
  [[ ${f##*/} == python3.*-dbg_* ]] || [ -n "${wanted[${f##*/}]:-}" ] || rm -f "$f"   # -dbg: fetch_debug's
done

# ---------------------------------------------------------------- patchelf (bookworm's)
patchelf_deb=$(printf '%s\n' "${files[@]}" | grep '^patchelf_' | head -n 1) || true
[ -n "$patchelf_deb" ] || fail "bookworm's patchelf was not resolved"
if [ "$(cat "$TOOLS/.from" 2>/dev/null)" != "$patchelf_deb" ] || [ ! -x "$TOOLS/usr/bin/patchelf" ]; then
  rm -rf "$TOOLS" && mkdir -p "$TOOLS"
  dpkg-deb -x "$DEBS/$patchelf_deb" "$TOOLS"
  echo "$patchelf_deb" > "$TOOLS/.from"
fi
PATCHELF=$TOOLS/usr/bin/patchelf

# ---------------------------------------------------------------- unpack + patch
debset=$(printf '%s\n' "${files[@]}" | grep -v '^patchelf_')
is_elf() { [ -f "$1" ] && [ ! -L "$1" ] && [ "$(head -c 4 "$1")" = $'\x7fELF' ]; }
stamped_debs=$(sed -n '/^debs:$/,$p' "$STAMP" 2>/dev/null | sed -e 1d -e '/^python=/d' || true)
if [ -d "$TREE" ] && [ -f "$STAMP" ] && [ "$stamped_debs" = "$debset" ] \
   && [ "$(head -n 1 "$STAMP")" = "$settings" ]; then
  say "package set unchanged; keeping $TREE"
else
  rm -f "$STAMP"
  new=$DEST/.sid.new
  rm -rf "$new" && mkdir -p "$new"
  say "unpacking $(wc -l <<< "$debset") packages"
  while read -r f; do dpkg-deb -x "$DEBS/$f" "$new"; done <<< "$debset"
  [ -e "$new/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" ] || fail "sid's libc6 has no ld-linux-x86-64.so.2"
  for b in "$new"/usr/bin/python3.*; do
    is_elf "$b" || continue
    # the final paths (under $TREE), since the tree is renamed below
    "$PATCHELF" --set-interpreter "$LIB/ld-linux-x86-64.so.2" --force-rpath --set-rpath "$LIB" "$b"
    say "patched ${b#"$new"/}"
  done
  rm -rf "$TREE"
  mv "$new" "$TREE"
fi

# ---------------------------------------------------------------- launchers
mkdir -p "$DEST/bin"
for l in "$DEST"/bin/python3.*; do [ -L "$l" ] && rm -f "$l"; done
pythons=()
for v in "${versions[@]}"; do
  b=$TREE/usr/bin/python$v
  if is_elf "$b"; then
    ln -sfn "../sid/usr/bin/python$v" "$DEST/bin/python$v"
    pythons+=("$DEST/bin/python$v")
  else
    say "WARNING: $b missing after unpacking; python$v left out"
  fi
done
[ ${#pythons[@]} -gt 0 ] || fail "no interpreter was installed"

# every DT_NEEDED of the interpreters and their extension modules should resolve inside the tree
unresolved=$(for f in "${pythons[@]}" "$TREE"/usr/lib/python3.*/lib-dynload/*.so; do
    readelf -d "$f" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' |
      while read -r so; do [ -e "$LIB/$so" ] || echo "${f##*/}:$so"; done
  done | sort -u | tr '\n' ' ')
[ -z "$unresolved" ] || say "note: not provided by the sid tree (falls back to the host's): $unresolved"

smoke "${pythons[@]}" || fail "smoke test failed"
debug_ready || fetch_debug "${versions[@]}"
{
  echo "$settings"
  printf 'python=%s\n' "${pythons[@]}"
  echo "debs:"
  echo "$debset"
} > "$STAMP.new"
mv "$STAMP.new" "$STAMP"
rm -f "$APTDIR/pkgcache.bin" "$APTDIR/srcpkgcache.bin"
rm -rf "$CACHE/empty"
say "ready: python ${versions[*]} in $TREE"
printf '%s\n' "${pythons[@]}"
