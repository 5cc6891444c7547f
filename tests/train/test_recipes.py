"""Recipes (train/recipes/*.toml, `python -m train recipe NAME`): every built-in is one versioned
file whose stages are valid commands; the runner runs them in order, skips finished stages,
resumes an interrupted one, and installs the model; every stage option is used somewhere."""
from __future__ import annotations

import json
import re

import pytest
import torch

import edgeinfer
import train.recipe as recipe
from tests.conftest import ROOT
from tests.train.test_data import write_tiny_mnist
from train.__main__ import main as train_main
from train.__main__ import parser as train_parser
from train.checkpoint import load_checkpoint

TINY = """
description = "a tiny digits model"
data = "a tiny MNIST written by the test"
model = "{export}/tiny-fp32.onnx"
builtin = "tiny"
minutes = 0.1
[reached]
test_accuracy = 0.5
[[stages]]
name = "train"
run = "train digits"
[stages.options]
hidden = 8
epochs = 2
batch = 16
seed = 3
threads = 1
[[stages]]
name = "export"
run = "export"
args = ["{train}/checkpoint.pt"]
[stages.options]
name = "tiny"
no-int8 = true
"""


@pytest.mark.parametrize("name", recipe.RECIPES)
def test_every_recipe_is_complete_and_its_commands_parse(name: str) -> None:
    r = recipe.load_recipe(name)
    assert r.builtin == name and r.description and r.data and r.minutes > 0 and r.reached
    assert (ROOT / "edgeinfer" / "models" / f"{name}.onnx").is_file()
    places = {"root": ".", **{s.name: f"runs/{name}/{s.name}" for s in r.stages}}
    for stage in r.stages:
        argv = recipe.stage_argv(stage, {**places, "out": f"runs/{name}/{stage.name}"}, None, 0, 0)
        recipe.check_stage(stage, argv)  # ValueError when the program refuses them
        assert "{" not in " ".join(argv), argv  # every placeholder filled
        assert stage.note, f"{name}: stage {stage.name} says nothing of what it does"
        if stage.program == "train" and stage.args[0] in recipe.RESUMABLE:
            assert "seed" in stage.options, f"{name}: stage {stage.name} states no seed"


def test_recipes_state_the_figures_of_the_files_they_build() -> None:
    """Each recipe's `reached` figures are those of the built-in it reproduces (the file's own record)."""
    names = {"int8_test_accuracy": "test_accuracy", "int8_val_loss": "val_loss",
             "int8_test_accuracy_after_a_quarter": "test_accuracy_read_0.25"}
    for name in recipe.RECIPES:
        metrics = edgeinfer.load(name).spec.metrics
        for key, value in recipe.load_recipe(name).reached.items():
            stored = metrics[names.get(key, key)]
            assert stored == pytest.approx(value, abs=5e-5), f"{name}: {key} {value} but the file has {stored}"


def test_every_stage_option_has_a_recipe_or_a_documented_command() -> None:
    """No option of `python -m train` exists only for a recipe nobody runs any more."""
    used = set()
    for name in recipe.RECIPES:
        for stage in recipe.load_recipe(name).stages:
            if stage.program == "train":
                used |= {f"--{k}" for k in stage.options}
    docs = (ROOT / "README.md").read_text() + (ROOT / "docs" / "training.md").read_text()
    documented = set(re.findall(r"(--[a-z][a-z0-9-]*)", docs))
    automatic = {"--out", "--data", "--threads", "--limit", "--resume", "--help"}  # the runner's, or every stage's
    subs = next(a for a in train_parser()._actions if a.dest == "task").choices
    missing = []
    for command, sub in subs.items():
        for action in sub._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag not in used | documented | automatic:
                    missing.append(f"{command} {flag}")
    assert not missing, f"options no recipe and no documented command uses: {missing}"


def test_help_lists_the_recipes(capsys) -> None:
    assert train_main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in recipe.RECIPES:
        assert re.search(rf"^  {name} +\S", out, re.M), out
    assert set(recipe.RECIPES) == {"characters", "digits", "motions", "sentiment"}


def test_dry_run_prints_the_stages_commands(capsys) -> None:
    assert train_main(["recipe", "sentiment", "--dry-run", "--out", "runs/s"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" --")[0] for line in lines] == [
        "python -m train vectors", "python -m train sentiment", "python -m train ngrams", "python -m train stack",
        "python -m train sentiment", "python -m train sentiment", "python -m train ensemble",
        "python -m export runs/s/ensemble/checkpoint.pt",
        "python -m edgeinfer_export.both runs/s/export/sentiment-int8.onnx runs/s/forms/sentiment.onnx"]
    assert "--init runs/s/stack/checkpoint.pt --short-branch 128" in lines[4] and "--seed 1" in lines[5]
    assert not (ROOT / "runs" / "s").exists()


def test_runner_skips_finished_stages_resumes_and_installs(tmp_path, capsys, monkeypatch) -> None:
    data, out = tmp_path / "data", tmp_path / "run"
    write_tiny_mnist(data)
    path = tmp_path / "tiny.toml"
    path.write_text(TINY.replace("threads = 1\n", ""))
    # an interrupted first try: the training stage stopped after its first epoch
    assert train_main(["digits", "--data", str(data), "--out", str(out / "train"), "--hidden", "8", "--epochs", "2",
                       "--batch", "16", "--seed", "3", "--stop-after", "1", "--threads", "1"]) == 0
    monkeypatch.setattr(recipe, "MODELS", tmp_path / "models")
    (tmp_path / "models").mkdir()
    model = recipe.run_recipe(path, out, data=str(data), threads=1, install=True)
    err = capsys.readouterr().err
    assert "resuming" in err and model == out / "export" / "tiny-fp32.onnx"
    assert (tmp_path / "models" / "tiny.onnx").read_bytes() == model.read_bytes()
    lines = [json.loads(x) for x in (out / "train" / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in lines] == [1, 2]
    # the same weights as one uninterrupted run
    assert train_main(["digits", "--data", str(data), "--out", str(tmp_path / "whole"), "--hidden", "8",
                       "--epochs", "2", "--batch", "16", "--seed", "3", "--threads", "1"]) == 0
    a, b = (load_checkpoint(p / "checkpoint.pt") for p in (out / "train", tmp_path / "whole"))
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
    assert a.train_args["seed"] == 3 and a.train_args["augment_robust"] is False
    # run again: both stages skipped; --from export runs the export only
    before = model.stat().st_mtime_ns
    recipe.run_recipe(path, out, data=str(data), threads=1)
    assert capsys.readouterr().err.count("done before, skipped") == 2 and model.stat().st_mtime_ns == before
    recipe.run_recipe(path, out, data=str(data), threads=1, start="export")
    err = capsys.readouterr().err
    assert "train done before, skipped" in err and "export: python -m export" in err
    # a changed option makes the stage (and every later one) run again
    path.write_text(TINY.replace("threads = 1\n", "").replace("epochs = 2", "epochs = 3"))
    recipe.run_recipe(path, out, data=str(data), threads=1)
    err = capsys.readouterr().err
    assert "skipped" not in err and load_checkpoint(out / "train" / "checkpoint.pt").epoch == 3


def test_recipe_errors_are_one_line(tmp_path, capsys) -> None:
    assert train_main(["recipe", "nonesuch"]) == 2
    assert "invalid choice: 'nonesuch'" in capsys.readouterr().err
    assert train_main(["recipe", "digits", "--from", "nowhere", "--dry-run"]) == 2
    assert capsys.readouterr().err == "error: --from nowhere: recipe digits has the stages train, export\n"
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY.replace("hidden = 8", "hiddn = 8"))
    with pytest.raises(ValueError, match="stage train: python -m train does not take these arguments"):
        recipe.run_recipe(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # checked before any stage ran
    bad.write_text(TINY.replace('"{train}/checkpoint.pt"', '"{trian}/checkpoint.pt"'))
    with pytest.raises(ValueError, match="names 'trian', which is not an earlier stage"):
        recipe.run_recipe(bad, tmp_path / "out")
    bad.write_text(TINY.replace('run = "export"', 'run = "rm -rf"'))
    with pytest.raises(ValueError, match="`run` must start with one of"):
        recipe.load_recipe(bad)
    bad.write_text("description = [")
    with pytest.raises(ValueError, match="not a valid recipe"):
        recipe.load_recipe(bad)
    failing = tmp_path / "failing.toml"  # a stage that fails: no data where it looks
    failing.write_text(TINY)
    with pytest.raises(ValueError, match=r"stage train failed \(exit code 2\)"):
        recipe.run_recipe(failing, tmp_path / "f", data=str(tmp_path / "no-data"))
    assert not (tmp_path / "f" / "train" / recipe.DONE).exists()


def test_the_readmes_figures_are_the_recipes() -> None:
    """The README's table of built-ins shows each recipe's figure for its shipped file (and the
    recipe's are the file's own: test_recipes_state_the_figures_of_the_files_they_build)."""
    text = (ROOT / "README.md").read_text()
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(\w+)` \|.*\| ([^|]*?[\d.]+[^|]*?) \| [\d.]+ [kM]B \|$",
                                                         text, re.M)}
    assert set(rows) == set(recipe.RECIPES), rows
    for name, shown in rows.items():
        value = float(re.search(r"(\d+\.?\d*)", shown.replace(",", "")).group(1))
        reached = recipe.load_recipe(name).reached
        want = reached.get("int8_test_accuracy", reached.get("int8_val_loss"))
        got = value / 100 if "%" in shown else value
        assert got == pytest.approx(want, abs=5e-4), f"README says {shown} for {name}; its recipe {want}"
    assert "[docs/models.md](docs/models.md)" in text[text.index("## The built-in models"):]
