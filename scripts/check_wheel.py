"""Check a release wheel's contents: only what belongs in it, and small enough.

    python scripts/check_wheel.py dist/fastnn-0.1.0-cp312-cp312-manylinux_2_34_x86_64.whl ...

Every file must match one of the patterns allowed for its project (fastnn or
fastnn-cuda13); anything else (build artefacts, caches, compiled bytecode, test outputs,
a CUDA module in the CPU wheel) fails the check, as does a fastnn wheel of 5 MB or more.
Prints the listing (name and size) so a release can be reviewed. Standard library only.
"""

from __future__ import annotations

import re
import sys
import zipfile
from pathlib import Path

MAX_CPU_WHEEL = 5 * 1024 * 1024

ALLOWED = {
    "fastnn": [
        r"fastnn/(?:[a-z_0-9]+/)*[a-z_0-9]+\.py",
        r"fastnn/_C\.cpython-3\d+-x86_64-linux-gnu\.so",
        r"fastnn/data/mnist/(?:README\.md|t10k-(?:images-idx3|labels-idx1)-ubyte\.gz)",
        r"fastnn\.libs/libgomp-[0-9a-f]+\.so\.1(?:\.0\.0)?",
    ],
    "fastnn_cuda13": [
        r"fastnn_cuda13/(?:__init__|_version)\.py",
        r"fastnn_cuda13/_cuda\.cpython-3\d+-x86_64-linux-gnu\.so",
        r"fastnn_cuda13\.libs/[^/]+\.so[.0-9]*",
    ],
}
DIST_INFO = (r"{project}-[^/]+\.dist-info/"
             r"(?:METADATA|WHEEL|RECORD|entry_points\.txt|licenses/LICENSE|sboms/auditwheel\.cdx\.json)")


def check(path: Path) -> list[str]:
    project = path.name.split("-")[0]
    if project not in ALLOWED:
        return [f"{path.name}: not a fastnn or fastnn-cuda13 wheel"]
    patterns = [re.compile(p) for p in ALLOWED[project] + [DIST_INFO.format(project=project)]]
    problems = []
    with zipfile.ZipFile(path) as wheel:
        infos = [i for i in wheel.infolist() if not i.is_dir()]
    print(f"{path.name}: {path.stat().st_size / 1e6:.2f} MB, {len(infos)} files")
    for info in infos:
        print(f"  {info.file_size:>10}  {info.filename}")
        if not any(p.fullmatch(info.filename) for p in patterns):
            problems.append(f"{path.name}: unexpected file {info.filename}")
    names = {i.filename for i in infos}
    module = "fastnn/_C." if project == "fastnn" else "fastnn_cuda13/_cuda."
    if not any(n.startswith(module) for n in names):
        problems.append(f"{path.name}: no {module}*.so module")
    if f"{project}-{path.name.split('-')[1]}.dist-info/licenses/LICENSE" not in names:
        problems.append(f"{path.name}: no LICENSE in the dist-info")
    if project == "fastnn":
        if any("_cuda" in n for n in names):
            problems.append(f"{path.name}: CUDA code in the CPU wheel")
        if path.stat().st_size >= MAX_CPU_WHEEL:
            problems.append(f"{path.name}: {path.stat().st_size} bytes, the limit is 5 MB")
    return problems


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    problems = [p for arg in argv for p in check(Path(arg))]
    for problem in problems:
        print(f"FAIL {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
