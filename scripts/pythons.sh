# Sourced by build_release.sh and test_wheel.sh: find_python 3.X prints the path of a
# CPython 3.X, from PATH (python3.X) or from pyenv's versions, or fails.
find_python() {
    local minor=$1 found
    if found=$(command -v "python$minor"); then
        # the real interpreter, not a pyenv shim (it answers only for enabled versions) nor a
        # virtual environment's python
        found=$("$found" -c 'import os, sys; print(os.path.join(sys.base_prefix, "bin",
            "python%d.%d" % sys.version_info[:2]))' 2>/dev/null) || found=""
        [[ -x $found ]] || found=""
    fi
    if [[ -z $found ]]; then
        found=$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$minor".*/bin/"python$minor" \
                2>/dev/null | sort -V | tail -1)
    fi
    [[ -n $found ]] || { echo "no CPython $minor found (PATH or pyenv)" >&2; return 1; }
    echo "$found"
}
