"""Break each guard of the zoo on purpose and check that the tests meant to catch it fail.

A test that passes whether or not the code it guards is there proves nothing. For every
guard below this script replaces one exact piece of the guarded code with a broken
version (one textual replacement in one source file), runs the guard's tests, expects
every one of them to FAIL, and puts the file back byte for byte, modification time
included (also on Ctrl-C or SIGTERM), before the next guard.

    python tests/break_guards.py                    # every guard (about 4 minutes on two CPU cores)
    python tests/break_guards.py --list             # the guards, the files they break and their tests
    python tests/break_guards.py --only fifo-does-not-hang   # one guard (repeat --only for more)
    python tests/break_guards.py --intact           # the same tests with nothing broken: they must pass
    python tests/break_guards.py --wait-while FILE  # before each guard, wait while FILE exists

It refuses to start when a file it would break has uncommitted changes, so it never
overwrites anyone's edits. It exits non-zero when a test still passes with its guard
broken, when a test did not run, or when a guard's `old` text is not found exactly once
in its file (the code moved or changed: update the guard to the new code).

While a guard is broken, the file really is broken for every process reading the
checkout: do not run it while others run tests in the same working tree.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 600


@dataclass(frozen=True)
class Guard:
    name: str
    file: str  # relative to the repository root
    old: str  # must occur exactly once in `file`
    new: str
    tests: tuple[str, ...]  # pytest node ids; each must fail while `old` is replaced by `new`
    memory_limit: int | None = None  # bytes of address space for the pytest run


FAULTS = "tests/test_faults.py::"
PARITY = "tests/test_export.py::test_parity_refuses_a_graph_that_differs_from_pytorch"
LIGHT = "tests/test_cli_light.py::test_listing_commands_do_not_import_heavy_libraries"
BROKEN_PLUGIN = FAULTS + "test_a_broken_plugin_leaves_the_others_working"
MANIFEST_FAULTS = FAULTS + "test_bundle_manifest_faults"

GUARDS = (
    Guard("exit-2-for-user-errors", "core/boundary.py",
          "        return exc.exit_code",
          "        return EXIT_BUG",
          ("tests/test_export.py::test_unknown_target_and_precision",)),
    # The report is dropped but the status kept: the test must read the report, not only the status.
    Guard("bug-report", "core/boundary.py",
          "        report_bug(exc)\n        return EXIT_BUG",
          "        return EXIT_BUG",
          (FAULTS + "test_a_bug_in_a_plugin_is_reported_not_swallowed",)),
    # argv0, argv1, argv2: `list`, `list --json`, `list '*gan*' --task image-generation`
    Guard("list-imports-no-torch", "core/cli.py",
          "from __future__ import annotations\n",
          "from __future__ import annotations\n\nimport torch\n",
          (LIGHT + "[argv0]", LIGHT + "[argv1]", LIGHT + "[argv2]")),
    # A command that fails before doing anything imports nothing either: the probe must insist on success.
    Guard("list-must-succeed", "core/cli.py",
          "def cmd_list(args) -> int:\n",
          "def cmd_list(args) -> int:\n    return 1\n",
          (LIGHT + "[argv0]", LIGHT + "[argv1]", LIGHT + "[argv2]")),
    # A writer that clears the old result before the new one is complete, as a non-atomic one would.
    Guard("atomic-swap-keeps-previous", "core/files.py",
          "    try:\n        yield temporary\n",
          "    try:\n        if mode == \"replace\":\n            shutil.rmtree(path)\n        yield temporary\n",
          ("tests/test_export.py::test_a_failed_export_keeps_the_previous_bundle",
           FAULTS + "test_a_failure_inside_atomic_directory_keeps_the_previous_result")),
    Guard("sigterm-during-export", "core/boundary.py",
          "    for number in (signal.SIGINT, signal.SIGTERM):\n        try:\n            signal.signal(number, _on_signal)",
          "    for number in (signal.SIGINT,):\n        try:\n            signal.signal(number, _on_signal)",
          (FAULTS + "test_a_signal_during_export_leaves_the_previous_bundle[15-143-terminated]",)),
    # Stored outputs 1% off: only a check that reruns the graph on the test inputs can notice.
    Guard("test-vectors-recomputed", "export/onnx.py",
          '("output", graph.outputs, expected)',
          '("output", graph.outputs, {name: array * np.float32(1.01) for name, array in expected.items()})',
          ("tests/test_export.py::test_test_vectors_reproduce_in_onnx_runtime",
           "tests/test_export.py::test_bundle_layout_and_manifest")),
    Guard("parity-dtype", "export/onnx.py",
          "            if produced[name].dtype != reference.dtype:",
          "            if False:",
          (PARITY + "[wrong_dtype-(z * self.scale).double()-output 'image' is float64 in ONNX Runtime and float32 in PyTorch]",)),
    # Outputs of another shape are skipped instead of recorded as a failure.
    Guard("parity-shape", "core/parity.py",
          '            self.shape_errors.append(f"shape {candidate.shape} instead of {reference.shape}{where}")\n',
          "",
          (PARITY + "[wrong_shape-(z * self.scale)[:, :4]-shape (1, 4) instead of (1, 8) at batch 1]",)),
    Guard("parity-batch-8", "export/onnx.py",
          "    for offset, batch in enumerate(batches):",
          "    for offset, batch in enumerate(batches[:1]):",
          (PARITY + "[wrong_at_8-z * self.scale + (torch.arange(z.shape[0]) >= 7).unsqueeze(1).float()-at batch 8]",)),
    Guard("parity-tolerance", "core/parity.py",
          "        outside = int((error > allowed).sum())",
          "        outside = int((error > 2 * allowed).sum())",
          (PARITY + "[just_outside-z * self.scale * 0 + 1.5e-4-output 'image': max abs 0.00015]",)),
    # The test's cnn int8 export is refused by the auxiliary graph's gate (relative RMS drift).
    Guard("quality-gate", "export/precision.py",
          "    if worst > limit:",
          "    if False:",
          ("tests/test_quality.py::test_the_quality_gate_refuses_and_writes_nothing",)),
    Guard("quality-drop", "export/precision.py",
          "    if drop > config[\"max_quality_drop\"]:",
          "    if False:",
          ("tests/test_quality.py::test_the_task_metric_gate_refuses_a_precision_that_costs_quality",)),
    Guard("conformance-parity", "core/testing.py",
          "        raise ConformanceError(f\"onnx export of model '{name}': {exc}\") from None",
          "        return Path(out)",
          ("tests/test_conformance.py::test_check_model_refuses_a_plugin_that_fails_parity",)),
    Guard("conformance-nan", "core/testing.py",
          '                if array.dtype.kind == "f" and not np.isfinite(array).all():',
          "                if False:",
          ("tests/test_conformance.py::test_check_model_refuses_a_plugin_that_returns_nan",)),
    Guard("card-sha256", "core/weights.py",
          "        if actual != resolved.sha256:",
          "        if False:",
          ("tests/test_conformance.py::test_check_model_refuses_shipped_weights_whose_card_has_another_sha256",)),
    # Without the check, --n 10000000 really allocates (about 8 GB of inputs): the address-space
    # limit turns that into a MemoryError at once instead of swapping a shared machine to death.
    Guard("n-memory-limit", "core/tasks/image_generation.py",
          "    if count > largest:",
          "    if False:",
          (FAULTS + "test_run_n_beyond_memory_is_refused_before_allocating",),
          memory_limit=6 * 1024**3),
    # 1% off is far outside the test's rel=2e-3; an off-by-one image would hide inside it.
    Guard("card-metrics", "core/tasks/image_classification.py",
          "round(float((predictions == labels).mean()), 4)",
          "round(float((predictions == labels).mean()) * 0.99, 4)",
          ("tests/test_card_metrics.py::test_card_metrics_are_reproduced[cnn]",)),
    Guard("weights-of-another-model", "core/weights.py",
          "    if stored and stored != resolved.model:",
          "    if False:",
          (FAULTS + "test_weights_for_another_model",)),
    Guard("bundle-containment", "core/bundles.py",
          "    if Path(relative).is_absolute() or not candidate.resolve().is_relative_to(bundle.resolve()):",
          "    if False:",
          (MANIFEST_FAULTS + '[{"model": "dcgan", "graphs": {"model": {"file": "../outside.onnx"}}}-points outside the bundle]',
           MANIFEST_FAULTS + '[{"model": "dcgan", "graphs": {"model": {"file": "/etc/hostname"}}}-points outside the bundle]',
           FAULTS + "test_bundle_graph_linked_outside_is_refused")),
    Guard("bundle-graph-sha256", "core/bundles.py",
          "    if actual != expected:",
          "    if False:",
          (FAULTS + "test_bundle_graph_altered_after_export_is_refused",)),
    # Pillow raises above twice MAX_IMAGE_PIXELS and only warns between once and twice it: two branches.
    Guard("decompression-bomb-error", "core/tasks/image_classification.py",
          "    except (Image.DecompressionBombError, Image.DecompressionBombWarning):",
          "    except Image.DecompressionBombWarning:",
          (FAULTS + "test_image_decompression_bomb",)),
    Guard("decompression-bomb-warning", "core/tasks/image_classification.py",
          '            warnings.simplefilter("error", Image.DecompressionBombWarning)',
          '            warnings.simplefilter("ignore", Image.DecompressionBombWarning)',
          (FAULTS + "test_image_between_the_pixel_limit_and_twice_it",)),
    # Broken, the child blocks opening the FIFO; the test's own 60 s timeout must end it.
    Guard("fifo-does-not-hang", "core/files.py",
          "    if not stat.S_ISREG(mode):",
          "    if False:",
          (FAULTS + "test_image_fifo_does_not_hang",)),
    Guard("plugin-system-exit", "core/registry.py",
          "        except (Exception, SystemExit) as exc:  # a broken plugin must not take the zoo down, even by exiting",
          "        except Exception as exc:",
          (BROKEN_PLUGIN + "[exits_at_import-failed to load: SystemExit]",)),
    # Wrong-typed fields are refused by the spec validation the registry runs (core/specs.py).
    Guard("plugin-field-types", "core/specs.py",
          "_check(isinstance(weights, WeightsSpec), ",
          "_check(True, ",
          (BROKEN_PLUGIN + "[string_weights-must be a WeightsSpec]",)),
    Guard("cache-entry-sha256", "core/exporting.py",
          "            graph_path(bundle, manifest, graph)",
          "            pass",
          (FAULTS + "test_cache_entry_with_a_garbled_graph_is_rebuilt",)),
    # Every non-empty folder is taken for a previous result, so it is replaced.
    Guard("user-folder-kept", "core/files.py",
          "        elif replaceable is not None and replaceable(path):",
          "        elif True:",
          (FAULTS + "test_export_refuses_a_folder_of_the_users_files",)),
    # Every temporary is taken for a live process's.
    Guard("stale-temporaries", "core/files.py",
          "        if not match or _alive(int(match[1])):",
          "        if not match or True:",
          (FAULTS + "test_stale_temporaries_of_a_dead_process_are_cleaned_by_the_next_write",)),
    Guard("umask", "core/files.py",
          "        os.chmod(temporary, 0o666 & ~_umask())\n",
          "",
          (FAULTS + "test_weights_written_by_the_zoo_respect_the_umask",)),
    Guard("name-fullmatch", "core/scaffold.py",
          "    if not _VALID_NAME.fullmatch(name):",
          "    if not _VALID_NAME.match(name):",
          (FAULTS + "test_new_plugin_name_with_a_trailing_newline",)),
    Guard("full-disk", "core/boundary.py",
          "        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM):\n"
          "            raise exc\n",
          "",
          (FAULTS + "test_a_full_disk_inside_the_exporter_is_reported_as_a_full_disk",)),
    Guard("wrapped-ctrl-c", "core/boundary.py",
          "        if isinstance(exc, KeyboardInterrupt):\n            raise exc\n",
          "",
          (FAULTS + "test_ctrl_c_wrapped_by_the_exporter_is_an_interrupt",)),
    # Both ways a whole number gets its bounds: a task's Option (--n) and positive_int (--epochs).
    Guard("parse-time-values", "core/argtypes.py",
          "        if minimum is not None and value < minimum:",
          "        if False:",
          (FAULTS + "test_values_refused_at_parse_time[argv0---n: 0 is too small]",
           FAULTS + "test_values_refused_at_parse_time[argv9---epochs: 0 is too small]")),
    Guard("ci-needs-data", "tests/conftest.py",
          '    if os.environ.get("CI") and not (MNIST / "t10k-images-idx3-ubyte.gz").is_file():',
          "    if False:",
          ("tests/test_ci_data.py::test_ci_without_the_test_data_is_a_usage_error",)),
)


def pytest_command(nodes: tuple[str, ...]) -> list[str]:
    # No -x: it would stop at the first failure and hide a sibling test that cannot fail.
    # -rA lists every test with its outcome, which is what the verdict is read from.
    command = [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider"]
    if importlib.util.find_spec("pytest_randomly"):
        command += ["-p", "no:randomly"]
    return command + list(nodes)


def run_tests(guard: Guard, timeout: float) -> tuple[dict[str, tuple[str, str]], str]:
    """Run the guard's tests; return each node's outcome (failed, passed or not run) and pytest's output."""
    limit = guard.memory_limit

    def limit_memory() -> None:
        if limit:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    # A session of its own, so that a timeout or Ctrl-C ends the tests' own children too.
    # Wide lines: pytest cuts each failure's reason to the terminal's width, 80 columns in a pipe.
    environment = {**os.environ, "COLUMNS": "300"}
    child = subprocess.Popen(pytest_command(guard.tests), cwd=ROOT, env=environment, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, start_new_session=True, preexec_fn=limit_memory)
    try:
        output, _ = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_session(child)
        output, _ = child.communicate()
        output += f"\n(killed after {timeout:.0f} s)"
    except BaseException:
        kill_session(child)
        child.wait()
        raise
    return {node: outcome(output, node) for node in guard.tests}, output


def kill_session(child: subprocess.Popen) -> None:
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:  # it had already ended
        pass


def outcome(output: str, node: str) -> tuple[str, str]:
    """("failed", "passed" or "not run", pytest's one-line reason for a failure)."""
    for line in output.splitlines():
        for word, result in (("FAILED", "failed"), ("ERROR", "failed"), ("PASSED", "passed")):
            prefix = f"{word} {node}"
            if line == prefix or line.startswith(prefix + " "):
                return result, line[len(prefix):].removeprefix(" - ")
    return "not run", ""  # skipped, not found, or the run was killed


def broken(guard: Guard, timeout: float) -> tuple[dict[str, tuple[str, str]], str]:
    """The guard's tests, run while its file holds `new` in place of `old`."""
    path = ROOT / guard.file
    original = path.read_bytes()
    before = path.stat()
    mutated = original.decode().replace(guard.old, guard.new).encode()
    # A typo in `new` would fail every test for the wrong reason.
    compile(mutated, guard.file, "exec")
    try:
        path.write_bytes(mutated)
        return run_tests(guard, timeout)
    finally:
        if path.read_bytes() != mutated:
            # Someone edited the file meanwhile: keep their work, and say so loudly.
            raise SystemExit(f"break_guards: {guard.file} changed while guard '{guard.name}' had broken it; "
                             f"NOT restored: compare it with `git diff -- {guard.file}` and repair it by hand")
        path.write_bytes(original)
        # The original mtime back: Python's bytecode cache and make-like tools see the file unchanged.
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def verdict(outcomes: dict[str, tuple[str, str]], intact: bool) -> tuple[bool, str]:
    """(as expected, the words for it)."""
    expected, wrong = ("passed", "failed") if intact else ("failed", "passed")
    if all(result == expected for result, _ in outcomes.values()):
        return True, "passes intact" if intact else "fails when broken"
    unexpected = [node for node, (result, _) in outcomes.items() if result == wrong]
    if unexpected:
        words = "FAILS INTACT" if intact else "STILL PASSES (the test cannot fail)"
        return False, f"{words}: {', '.join(unexpected)}"
    return False, "DID NOT RUN: " + ", ".join(node for node, (result, _) in outcomes.items() if result == "not run")


def uncommitted(files: list[str]) -> list[str]:
    return [f for f in files if subprocess.run(["git", "diff", "--quiet", "HEAD", "--", f], cwd=ROOT).returncode != 0]


def wait_while(path: Path | None) -> None:
    if path is None:
        return
    if path.exists():
        print(f"  (waiting while {path} exists)", flush=True)
    while path.exists():
        time.sleep(30)


def _terminate(number, frame) -> None:
    raise KeyboardInterrupt  # so that the `finally` restoring the file runs on SIGTERM too


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Break each guard and check that its tests fail.")
    parser.add_argument("--only", action="append", metavar="NAME", help="run only this guard (repeatable; see --list)")
    parser.add_argument("--list", action="store_true", help="list the guards, their files and tests, and exit")
    parser.add_argument("--intact", action="store_true", help="run the guards' tests with nothing broken: they must pass")
    parser.add_argument("--wait-while", type=Path, metavar="FILE", help="before each guard, wait while FILE exists")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S, help=f"seconds per pytest run (default {TIMEOUT_S})")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.only or ()) - {guard.name for guard in GUARDS})
    if unknown:
        parser.error(f"unknown guard {', '.join(unknown)}; see --list")
    guards = [guard for guard in GUARDS if not args.only or guard.name in args.only]
    if args.list:
        for guard in guards:
            print(f"{guard.name}  {guard.file}\n" + "".join(f"    {node}\n" for node in guard.tests), end="")
        return 0

    dirty = uncommitted(sorted({guard.file for guard in guards}))
    if dirty and not args.intact:
        print(f"break_guards: refusing to run: uncommitted changes in {', '.join(dirty)} (commit or stash them first)")
        return 2
    occurrences = {guard.name: (ROOT / guard.file).read_text().count(guard.old) for guard in guards}
    for name, count in occurrences.items():
        if count != 1:
            print(f"break_guards: guard '{name}': its old text occurs {count} times, not once; update the guard")

    signal.signal(signal.SIGTERM, _terminate)
    width = max(len(guard.name) for guard in guards)
    problems, started = [], time.monotonic()
    try:
        for guard in guards:
            if occurrences[guard.name] != 1:
                ok, words, seconds = False, f"OLD TEXT FOUND {occurrences[guard.name]} TIMES (update the guard)", 0.0
                outcomes = {}
            else:
                wait_while(args.wait_while)
                begin = time.monotonic()
                if args.intact:
                    outcomes, output = run_tests(guard, args.timeout)
                else:
                    outcomes, output = broken(guard, args.timeout)
                seconds = time.monotonic() - begin
                ok, words = verdict(outcomes, args.intact)
                if not ok:
                    print(output[-3000:])
            print(f"{guard.name:<{width}}  {guard.file}  {', '.join(guard.tests)}  {words}  ({seconds:.0f} s)", flush=True)
            for result, reason in outcomes.values():
                if reason:  # so a reader can tell the guard's effect from an unrelated crash
                    print(f"{'':<{width}}    {reason[:160]}")
            if not ok:
                problems.append(guard.name)
    except KeyboardInterrupt:
        print("break_guards: interrupted; every file it broke is restored")
        return 130

    total = time.monotonic() - started
    print(f"\n{len(guards) - len(problems)} of {len(guards)} guards as expected in {total:.0f} s", end="")
    print(f"; not as expected: {', '.join(problems)}" if problems else "")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
