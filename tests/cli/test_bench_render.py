"""`dualrl bench throughput --render`: the pages are remade from their JSON alone, and a
section measured on an accelerator names it and drops the CPU-only explanations."""

import json
from pathlib import Path

import pytest

from dualrl.bench.throughput import main

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results"


@pytest.mark.parametrize("name", ["throughput", "throughput_gpu"])
def test_committed_pages_are_remade_from_their_json(tmp_path, name):
    md = tmp_path / f"{name}.md"
    out = RESULTS / f"{name}.json"
    assert main(["--render", "--out", str(out), "--md", str(md)]) == 0
    remade = md.read_text().replace(str(out), f"docs/results/{name}.json").replace(
        str(md), f"docs/results/{name}.md")
    assert remade == (RESULTS / f"{name}.md").read_text()


def test_accelerator_section_names_its_device(tmp_path):
    critics = json.loads((RESULTS / "throughput.json").read_text())["critics"]
    critics |= {"backend": "gpu", "device": "Some GPU", "machine": "x86_64, 8 CPU cores",
                "jax_version": "9.9", "ensemble_vmapped_over_loop": 1.5}
    out, md = tmp_path / "r.json", tmp_path / "r.md"
    out.write_text(json.dumps({"critics": critics}))
    main(["--render", "--out", str(out), "--md", str(md)])
    page = md.read_text()
    assert "JAX 9.9 on gpu (Some GPU)" in page and "on Some GPU, medians" in page
    assert "2 CPU cores" not in page and "Reproduce:" not in page
    assert "| ratio vmapped / loop | 1.50× |" in page
