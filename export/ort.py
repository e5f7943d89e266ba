"""The ORT target: ONNX Runtime's ORT format for ONNX Runtime Mobile and
minimal builds, with the operator config file such a build needs.

Each graph is exported and validated as ONNX first, converted with
`onnxruntime.tools.convert_onnx_models_to_ort` (fixed optimizations, type
reduction), then the .ort file is loaded by ONNX Runtime and must reproduce
the bundle's test vectors.
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path
from typing import Any

import zoo
from zoo.errors import ZooError
from zoo.parity import Tolerance, compare
from zoo.runtime import OnnxBackend

OPERATOR_CONFIG = "required_operators_and_types.config"


@zoo.hookimpl
def register_exporters(register):
    register(
        zoo.ExporterSpec(
            name="ort",
            export="zoo.export.ort:export",
            check="zoo.export.onnx:check",
            precisions=("fp32", "fp16", "int8"),
            description="ORT format (ONNX Runtime Mobile / minimal builds) with the required-operators config",
        )
    )


def convert(onnx_path: Path) -> tuple[Path, Path]:
    """model.onnx -> model.ort and its operator config, beside it."""
    from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle, convert_onnx_models_to_ort

    folder = onnx_path.parent
    work = folder / ".ort-conversion"
    captured = io.StringIO()
    logging.getLogger("ort_format_model.utils").setLevel(logging.WARNING)  # it logs the temporary path at INFO
    try:
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            convert_onnx_models_to_ort(
                onnx_path, work, optimization_styles=[OptimizationStyle.Fixed], enable_type_reduction=True
            )
    except Exception as exc:
        from zoo.boundary import check_interrupted

        check_interrupted(exc)
        raise ZooError(f"ONNX Runtime could not convert {onnx_path.name} to the ORT format ({type(exc).__name__}: {exc}); use --target onnx") from None
    converted, config = work / f"{onnx_path.stem}.ort", work / f"{onnx_path.stem}.required_operators_and_types.config"
    if not converted.is_file() or not config.is_file():
        raise ZooError(f"ONNX Runtime's converter wrote no ORT file for {onnx_path.name}: {captured.getvalue()[-300:]}")
    ort_path, config_path = folder / "model.ort", folder / OPERATOR_CONFIG
    converted.rename(ort_path)
    # The generated header names the temporary path; name the shipped file instead.
    lines = [line for line in config.read_text().splitlines() if not line.startswith("#")]
    config_path.write_text("# Operators and types of model.ort, for an ONNX Runtime minimal build:\n"
                           "#   build.sh --minimal_build --include_ops_by_config " + OPERATOR_CONFIG + "\n"
                           + "\n".join(lines) + "\n")
    config.unlink()
    work.rmdir()
    return ort_path, config_path


def export(job: zoo.ExportJob) -> dict[str, Any]:
    from zoo.export import onnx as onnx_target

    entries = onnx_target.export(job)
    for name, entry in entries["graphs"].items():
        graph = job.spec.graph(name)
        onnx_path = job.out_dir / entry["file"]
        ort_path, config_path = convert(onnx_path)
        inputs, expected = onnx_target.read_test_data(job.out_dir / entry["test_data"], entry)
        parity = compare(graph, expected, OnnxBackend(ort_path, graph).run(inputs),
                         Tolerance(job.export_config["atol"], job.export_config["rtol"]), job.precision)
        parity.check("the ORT-format file and the bundle's test vectors")
        worst = max(output.max_abs for output in parity.outputs.values())
        job.log(f"{job.spec.name}/{name}: ORT format reproduces the test vectors (max abs {worst:.2e})")
        entry["ort"] = {
            "file": str(ort_path.relative_to(job.out_dir)),
            "sha256": zoo.file_sha256(ort_path),
            "operator_config": str(config_path.relative_to(job.out_dir)),
            "max_abs_vs_test_data": worst,
        }
    return entries
