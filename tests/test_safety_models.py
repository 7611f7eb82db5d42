"""Issue 15 items 4 and 5 on the model side: no foreign code (custom-code folders refused before
transformers sees them, pickles never run) and prompts longer than the context refused before any
forward pass (memory measured in a real process)."""
from __future__ import annotations

import json
import pickle
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from _tiny_models import gpt2_dir, llama_dir
from spinsim.cli import main
from spinsim.models.loading import ContextLengthError, ModelLoadError, load_model, load_weights


def _custom_code_folder(tmp_path: Path, marker: Path, model_type: str) -> Path:
    """A copy of the tiny GPT-2 whose config names its own modelling code, which would create
    ``marker`` if it ever ran."""
    d = tmp_path / "evil"
    shutil.copytree(gpt2_dir(), d)
    cfg = json.loads((d / "config.json").read_text())
    cfg.update(model_type=model_type, architectures=["EvilForCausalLM"],
               auto_map={"AutoConfig": "modeling_evil.EvilConfig",
                         "AutoModelForCausalLM": "modeling_evil.EvilForCausalLM"})
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "modeling_evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    return d


@pytest.mark.parametrize("model_type", ["evil", "gpt2"])
def test_a_custom_code_folder_is_refused_and_its_code_never_runs(tmp_path, model_type):
    marker = tmp_path / "RAN"
    d = _custom_code_folder(tmp_path, marker, model_type)
    r = subprocess.run([sys.executable, "-m", "spinsim.cli", "extract", "--model", str(d), "--no-verify",
                        "--out", str(tmp_path / "h.h5")], input="y\ny\n", capture_output=True, text=True,
                       timeout=300)
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0 and len(lines) == 1, r.stderr
    assert "EvilForCausalLM" in lines[0] and "never runs code" in lines[0]
    assert "gpt2, llama" in lines[0]                      # the families spinsim supports
    assert not marker.exists()
    for load in (load_model, load_weights):
        with pytest.raises(ModelLoadError, match="EvilForCausalLM.*modeling_evil.py"):
            load(str(d))
    assert not marker.exists()


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_malicious_pickle_checkpoint_never_runs(tmp_path):
    marker = tmp_path / "PICKLE_RAN"
    d = tmp_path / "pickled"
    shutil.copytree(gpt2_dir(), d)
    (d / "model.safetensors").unlink()
    with open(d / "pytorch_model.bin", "wb") as fh:
        pickle.dump({"h.0.attn.c_attn.weight": _Evil(marker)}, fh)
    with pytest.raises(ModelLoadError):
        load_model(str(d))
    assert not marker.exists()


def test_a_prompt_longer_than_the_gpt2_context_is_one_line(tmp_path, capsys):
    long = " ".join(["The capital of France is Paris."] * 30)     # far more than 64 positions
    rc = main(["validate", "--model", str(gpt2_dir()), "--head", "L0H0", "--prompt", long, "--correct", "cold",
               "--wrong", "warm", "--out", str(tmp_path / "v.h5")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc in (1, 2) and "64 positions" in err[-1] and "at most 64 tokens fit" in err[-1], err
    assert not (tmp_path / "v.h5").exists()


_LONG_PROMPT = """
import resource, sys
from spinsim.models.loading import load_model
from spinsim.models.hamiltonians import head_hamiltonian
lm = load_model(sys.argv[1])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    head_hamiltonian(lm, "L0H0", "The capital of France is Paris. " * 3000)
except ValueError as exc:
    print(type(exc).__name__, exc)
print("grew_kib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base)
"""


def test_an_18000_token_prompt_on_a_64_position_llama_is_refused_before_allocating():
    r = subprocess.run([sys.executable, "-c", _LONG_PROMPT, str(llama_dir())], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[0].startswith("ContextLengthError") and "64 positions" in out[0], out
    n_tokens = int(out[0].split(" has ")[1].split()[0])
    assert n_tokens > 15_000
    grew = int(out[-1].split()[1]) * 1024
    assert grew < 200 * 2 ** 20, f"the refusal grew the process by {grew / 2 ** 20:.0f} MiB"
    assert issubclass(ContextLengthError, ValueError)
