"""The course's crates as a notebook's kernel loads them (docs/architecture.md).

A kernel preloads the toolbox; a module's first cell adds the module's crate. Cargo resolves the
features of shared libraries over everything a build includes, so a module's crate that turns on
a feature of, say, serde would rebuild serde and, above it, the toolbox: a second toolbox in a
kernel that has already loaded the first (two panic hooks, two sets of statics). These tests
resolve each set of crates that a notebook loads, as the kernel's cargo does, and require that
no library changes features from one set to another.
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "kernel"))
from launch import module_crates  # noqa: E402
from warm import MODULE_DEP, module_configurations  # noqa: E402

TOOLBOX = REPO / "support-crate" / "toolbox"
MODULES = module_crates(TOOLBOX)


def resolve(tmp_path, crates):
    """{package: its sets of features} for a package depending on the toolbox and `crates`.

    A library built both for the code and for build scripts or compiler plug-ins has one set
    of features per use: cargo resolves them apart, and builds each once."""
    name = "features-" + "-".join(crates or ["toolbox"]).replace("parcours-", "")
    package = tmp_path / name
    (package / "src").mkdir(parents=True)
    (package / "src" / "lib.rs").write_text("")
    dependencies = "".join(f'{crate} = {{ path = "{MODULES[crate]}" }}\n' for crate in crates)
    (package / "Cargo.toml").write_text(
        f'[package]\nname = "{name}"\nversion = "0.0.0"\nedition = "2024"\n\n[workspace]\n\n'
        f'[dependencies]\nparcours = {{ path = "{TOOLBOX}" }}\n{dependencies}')
    shutil.copyfile(REPO / "Cargo.lock", package / "Cargo.lock")
    tree = subprocess.run(
        ["cargo", "tree", "--edges", "normal,build", "--prefix", "none", "--format", "{p} [{f}]"],
        cwd=package, capture_output=True, text=True)
    assert tree.returncode == 0, tree.stderr
    features = {}
    for line in tree.stdout.splitlines():
        found = re.match(r"(\S+ v\S+)(?: \([^)]*\))*? \[(.*)\]", line)
        if found and not found[1].startswith(name + " "):
            features.setdefault(found[1], set()).add(found[2])
    return features


def test_every_modules_crate_is_found_and_loaded_by_a_notebook():
    assert set(MODULES) == {"parcours-limits", "parcours-cluster", "parcours-gpu", "parcours-queue",
                            "parcours-arrays", "parcours-frames", "parcours-pipelines",
                            "parcours-ballista"}
    loaded = {MODULE_DEP.match(line)[1] for lines in module_configurations() for line in lines}
    assert loaded == set(MODULES)


def test_loading_modules_changes_no_feature_of_what_is_already_built(tmp_path):
    alone = {crate: resolve(tmp_path, [crate]) for crate in MODULES}
    toolbox = resolve(tmp_path, [])
    together = [[MODULE_DEP.match(line)[1] for line in lines] for lines in module_configurations()]
    changed = []
    everything = list(MODULES)
    for crates in together + [everything]:
        resolved = resolve(tmp_path, crates) if len(crates) > 1 else alone[crates[0]]
        # The toolbox's libraries as the kernel started with them, whatever a cell loads; each
        # module's as its other notebooks load it (one build of it serves them all), a module
        # that another one depends on included (Module 3's crate uses Module 1's).
        modules = [] if crates is everything else [
            crate for crate in MODULES if any(package.startswith(f"{crate} v") for package in resolved)]
        for before, label in [(toolbox, "the toolbox")] + [
                (alone[crate], crate) for crate in modules]:
            # A build of a library that was there must still be there; another build of it
            # (for another crate's build script) is a library of its own.
            changed += [f"{package}: [{' | '.join(sorted(features))}] with {label} alone, "
                        f"[{' | '.join(sorted(resolved[package]))}] with {' + '.join(crates)}"
                        for package, features in before.items() if not features <= resolved[package]]
    assert not changed, (
        "loading these crates together turns on features that one of them alone does not; turn "
        "them on in the toolbox's (or the module's) Cargo.toml:\n" + "\n".join(sorted(set(changed))))


@pytest.mark.parametrize("crate", ["parcours", "parcours-limits", "parcours-cluster",
                                   "parcours-gpu", "parcours-queue", "parcours-arrays",
                                   "parcours-frames", "parcours-ballista"])
def test_each_crate_is_a_dylib_for_the_kernel(crate):
    folder = TOOLBOX if crate == "parcours" else MODULES[crate]
    manifest = (folder / "Cargo.toml").read_text()
    assert 'crate-type = ["rlib", "dylib"]' in manifest


def test_the_course_programs_link_only_their_modules_crate():
    metadata = json.loads(subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"], cwd=REPO,
        capture_output=True, text=True, check=True).stdout)
    binaries = {target["name"]: package["name"] for package in metadata["packages"]
                for target in package["targets"] if "bin" in target["kind"]}
    assert binaries == {"parcours-worker": "parcours-limits",
                        "parcours-manager": "parcours-cluster",
                        "parcours-cluster-worker": "parcours-cluster",
                        "parcours-pipe-worker": "parcours-cluster",
                        "parcours-shared-counter": "parcours-cluster",
                        "parcours-queue-worker": "parcours-queue",
                        "parcours-frames-bench": "parcours-frames",
                        "parcours-pipeline": "parcours-pipelines",
                        "parcours-pipelines-bench": "parcours-pipelines",
                        "parcours-ballista": "parcours-ballista"}
    tree = subprocess.run(["cargo", "tree", "-p", "parcours-limits", "-p", "parcours-cluster",
                           "--edges", "normal", "--prefix", "none"], cwd=REPO,
                          capture_output=True, text=True, check=True).stdout
    assert not re.search(r"^wgpu ", tree, re.MULTILINE), "a program links wgpu"


def test_the_data_engines_crates_are_left_out_of_every_release_build_alike():
    """polars, DataFusion and Ballista are built inside the kernel only (docs/kernel.md): the
    set-up's release build, the toolbox's `build_binaries` (a notebook's programs) and the
    queue benchmark must leave out the same crates, or one of them compiles the engines again
    (and each build changes the features of the course's crates for the other)."""
    course = re.search(r'^KERNEL_ONLY_CRATES="([^"]+)"', (REPO / "course").read_text(), re.M)[1].split()
    toolbox = re.search(r"pub const KERNEL_ONLY: \[&str; \d+\] = \[([^\]]+)\]",
                        (TOOLBOX / "src" / "launch.rs").read_text())[1]
    bench = (REPO / "tests" / "bench" / "module4_queues.py").read_text()
    assert set(course) == set(re.findall(r'"([a-z-]+)"', toolbox)) == {"parcours-frames", "parcours-ballista"}
    assert all(f'"--exclude", "{crate}"' in bench for crate in course)
