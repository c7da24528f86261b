#!/usr/bin/env bash
# Test a release wheel from dist/ as a user gets it: installed, with no compiler around.
#
#   scripts/test_wheel.sh 3.12          # the cp312 wheel
#   scripts/test_wheel.sh --all         # every CPython 3.9-3.13 wheel in dist/, one by one
#   scripts/test_wheel.sh --sdist 3.12  # dist/fastnn-*.tar.gz built and installed by pip
#
# For each: check the wheel's contents (scripts/check_wheel.py); make a fresh virtual
# environment of that CPython outside the checkout; hide every compiler and build tool
# (gcc, g++, cc, c++, nvcc, cmake, ninja, ld, make, ...) from PATH and show that they are
# gone; pip install the wheel with its test extra, binary packages only (numba is left out
# where no wheel of it exists for that Python); then, from a directory outside the source
# tree, with copies of tests/, benchmarks/, examples/ and README.md (its examples are tested):
#   * check that `fastnn` is the installed package (site-packages, fastnn._C loaded, no
#     ShadowedInstallWarning) and that `fastnn --version` / `python -m fastnn --version`
#     print the wheel's version;
#   * where dist/ has the fastnn-cuda13 wheel for this Python, install it too and check that
#     its module loads (no GPU needed) and fastnn finds it;
#   * run the whole test suite at the CPU's best kernel ISA, then the parity suite's cpu
#     cases at each lower ISA (FASTNN_ISA=avx2, portable), `fastnn info` reporting each;
#   * where qemu-user is installed, the parity suite's cpu cases on emulated older CPUs
#     (AVX-only and AVX2), with no FASTNN_ISA: the wheel's own dispatch must choose;
#   * run `fastnn train --epochs 1`;
#   * check that the installed package gained no files but bytecode (the numba cache goes
#     to the user cache directory, here a temporary XDG_CACHE_HOME).
# --sdist instead installs dist/fastnn-VERSION.tar.gz (compilers kept: it builds from
# source) and runs the same checks minus the wheel-content one.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
. "$root/scripts/pythons.sh"

if [[ ${1:-} == --all ]]; then
    for minor in 3.9 3.10 3.11 3.12 3.13; do
        bash "$0" "$minor"
    done
    exit 0
fi
mode=wheel
if [[ ${1:-} == --sdist ]]; then mode=sdist; shift; fi
minor=${1:?usage: scripts/test_wheel.sh 3.X | --all | --sdist 3.X}
python=$(find_python "$minor")
tag=cp${minor/./}
start=$(date +%s)

if [[ $mode == wheel ]]; then
    shopt -s nullglob
    wheels=(dist/fastnn-*-"$tag"-"$tag"-manylinux*.whl)
    [[ ${#wheels[@]} -eq 1 ]] || { echo "want one $tag wheel in dist/, found ${#wheels[@]}" >&2; exit 1; }
    artifact=$root/${wheels[0]}
    cuda_wheels=(dist/fastnn_cuda13-*-"$tag"-"$tag"-manylinux*.whl)
    "$python" scripts/check_wheel.py "$artifact" "${cuda_wheels[@]}"
else
    artifact=$(ls "$root"/dist/fastnn-*.tar.gz)
fi
version=$(basename "$artifact"); version=${version#fastnn-}; version=${version%%-*}
version=${version%.tar.gz}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fastnn-$mode-$tag.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "== testing $(basename "$artifact") with $python in $tmp"
"$python" -m venv "$tmp/venv"

# PATH without compilers or build tools: a directory of links to every other program.
hidden='^(gcc|g\+\+|cc|c\+\+|cpp|c89|c99|clang|clang\+\+|clang-.*|nvcc|cmake|ctest|cpack|ninja|ld|ld\..*|as|make|gmake|x86_64-linux-gnu-.*|gcc-.*|g\+\+-.*|cuda.*|nvlink|ptxas|fatbinary)$'
mkdir "$tmp/bin"
IFS=: read -ra dirs <<< "$PATH"
for dir in "${dirs[@]}"; do
    [[ -d $dir && $dir != "$root"* ]] || continue
    for program in "$dir"/*; do
        name=${program##*/}
        [[ -f $program && -x $program && ! -e $tmp/bin/$name ]] || continue
        [[ $name =~ $hidden ]] || ln -s "$program" "$tmp/bin/$name"
    done
done
clean_path=$tmp/venv/bin:$tmp/bin
if [[ $mode == wheel ]]; then
    for tool in gcc g++ cc c++ nvcc cmake ninja ld make; do
        if PATH=$clean_path command -v "$tool" >/dev/null; then
            echo "$tool is still on PATH" >&2; exit 1
        fi
    done
    echo "no compiler on PATH: gcc g++ cc c++ nvcc cmake ninja ld make all not found"
    export PATH=$clean_path
    only_binary=(--only-binary :all:)
else
    export PATH=$tmp/venv/bin:$PATH
    only_binary=()
fi
unset PYTHONPATH NUMBA_CACHE_DIR FASTNN_ISA FASTNN_BACKEND FASTNN_DISABLE_NATIVE
export XDG_CACHE_HOME=$tmp/cache PIP_DISABLE_PIP_VERSION_CHECK=1

pip install --quiet "${only_binary[@]}" "$artifact[test]" || {
    echo "(the test extra does not install here; retrying without numba)"
    pip install --quiet "${only_binary[@]}" "$artifact" pytest hypothesis pytest-benchmark matplotlib
}
pip list 2>/dev/null | grep -iE '^(fastnn|numpy|numba|pytest|hypothesis|matplotlib) '

# The tests run from here, beside copies of what they read from the checkout.
mkdir "$tmp/run"
cp -r tests benchmarks examples docs pyproject.toml README.md "$tmp/run/"
find "$tmp/run" -name __pycache__ -prune -exec rm -rf {} +
cd "$tmp/run"
site=$(python -c 'import sysconfig; print(sysconfig.get_paths()["platlib"])')
python -W error - "$site" <<'EOF'
import sys
import fastnn
from fastnn import _compat, backends
site = sys.argv[1]
assert fastnn.__file__.startswith(site + "/fastnn/"), fastnn.__file__
native, why = _compat.native()
assert native is not None and native.__file__.startswith(site), why
assert "cpu" in backends.available(), backends.unavailable()
print(f"fastnn {fastnn.__version__} from {fastnn.__file__}; backends {backends.available()}")
EOF
if [[ $mode == wheel && ${#cuda_wheels[@]} -gt 0 ]]; then
    # The CUDA wheel on a machine that may have no GPU: it installs, its module loads and
    # matches, and nothing else changes (without CuPy and a device there is no cuda backend).
    pip install --quiet --no-deps "$root/${cuda_wheels[0]}"
    python -W error -c 'from fastnn import _compat, backends
module, why = _compat.cuda_native()
assert module is not None and module.__name__ == "fastnn_cuda13._cuda", why
print(f"fastnn-cuda13: {module.__file__} loads; cuda backend:",
      "available" if "cuda" in backends.available() else backends.unavailable()["cuda"])'
fi
[[ $(fastnn --version) == "fastnn $version" ]]
[[ $(python -m fastnn --version) == "fastnn $version" ]]
package_files() {  # what the installed package holds, one path a line
    local dir
    for dir in fastnn fastnn.libs fastnn_cuda13 fastnn_cuda13.libs; do
        if [[ -d $site/$dir ]]; then (cd "$site" && find "$dir" -type f); fi
    done | sort
}
package_files > "$tmp/files-before"

best=$(python -c 'import fastnn._C as C; print(C.detected_isa())')
case $best in
    avx512) lower="avx2 portable" ;;
    avx2) lower="portable" ;;
    *) lower="" ;;
esac
echo "== full suite at FASTNN_ISA=$best"
[[ $(FASTNN_ISA=$best fastnn info --json | python -c 'import json,sys; print(json.load(sys.stdin)["kernel_isa"])') == "$best" ]]
# test_isa_paths' lower-ISA parity runs are done just below, each reported on its own.
FASTNN_ISA=$best python -m pytest -q -p no:cacheprovider \
    --deselect tests/test_isa_paths.py::test_lower_isa_passes_cpu_parity
for isa in $lower; do
    echo "== parity suite (cpu cases) at FASTNN_ISA=$isa"
    FASTNN_ISA=$isa fastnn info | grep "^kernel ISA:     $isa "
    FASTNN_ISA=$isa python -m pytest tests/test_parity.py -q -p no:cacheprovider -k cpu
done

# Older CPUs, where qemu-user is installed: on an emulated AVX-only x86-64 (SandyBridge: no
# AVX2, FMA or AVX-512) fastnn must pick the portable kernels by itself, on an emulated
# Haswell the avx2 ones, and pass the parity suite's cpu cases on each. Two settings hold
# for these emulated processes only, both for NumPy (the oracle), not fastnn:
# OPENBLAS_CORETYPE, as NumPy's OpenBLAS picks kernels the emulator cannot run; and
# NPY_DISABLE_CPU_FEATURES="AVX2 FMA3", as NumPy 2.0's AVX2/FMA3 float64 tanh returns
# values like 2e106 under qemu's Haswell (its baseline code is right there).
if command -v qemu-x86_64 >/dev/null; then
    for cpu_isa in SandyBridge:portable Haswell:avx2; do
        cpu=${cpu_isa%%:*} want=${cpu_isa##*:}
        echo "== emulated $cpu CPU (qemu-x86_64), expecting the $want kernels"
        emulated=(env OPENBLAS_CORETYPE=Nehalem NPY_DISABLE_CPU_FEATURES="AVX2 FMA3"
                  OMP_NUM_THREADS=1 qemu-x86_64 -cpu "$cpu" "$(command -v python)")
        got=$("${emulated[@]}" -c 'import fastnn._C as C; print(C.selected_isa())' 2>/dev/null)
        [[ $got == "$want" ]] || { echo "$cpu: fastnn chose '$got', not $want" >&2; exit 1; }
        "${emulated[@]}" -m pytest tests/test_parity.py -q -p no:cacheprovider -k cpu 2>&1 |
            grep -v "TCG doesn't support"
    done
else
    echo "(no qemu-x86_64 here: the runs on emulated older CPUs are skipped)"
fi

echo "== fastnn train --epochs 1"
fastnn train --epochs 1 --out "$tmp/train"
[[ -f $tmp/train/model.npz ]]

# Nothing may have been written into the installed package but bytecode.
package_files > "$tmp/files-after"
added=$(comm -13 "$tmp/files-before" "$tmp/files-after" | grep -vE '/__pycache__/[^/]+\.pyc$' || true)
if [[ -n $added ]]; then
    echo "files written into the installed package:" >&2; echo "$added" >&2; exit 1
fi
if python -c 'import numba' 2>/dev/null; then
    count=$(find "$XDG_CACHE_HOME/fastnn/numba" -name '*.nbi' | wc -l)
    [[ $count -gt 0 ]] || { echo "no numba cache in $XDG_CACHE_HOME/fastnn/numba" >&2; exit 1; }
    echo "numba cache: $count index files under \$XDG_CACHE_HOME/fastnn/numba, none in site-packages"
fi
echo "== $(basename "$artifact") on $tag: all checks passed in $(( $(date +%s) - start )) s"
