"""Recipes: each built-in model is a versioned file (train/recipes/NAME.toml) and one command.

    python -m train recipe digits              # every stage, into runs/digits/STAGE
    python -m train recipe digits --dry-run    # the commands it runs, one per stage
    python -m train recipe digits --install    # and copy the model over edgeinfer/models/digits.onnx

A recipe states its data, its stages in order (each a command of `python -m train`, `python -m
export`, `python -m edgeinfer_export.both` or `edgeinfer-train`, with its options, seeds
included) and the figures the shipped model reached. In a stage's arguments `{out}` is that
stage's folder (OUT/STAGE), `{STAGE}` another stage's, `{root}` the repository. `train` and
`export` stages get `--out {out}` and `--data` themselves. A stage that finished (a marker in its
folder records the command) is skipped when the recipe runs again with the same command, so an
interrupted recipe continues where it stopped; a training stage interrupted mid-way resumes
from its last checkpoint (`--resume`).
"""
from __future__ import annotations

import importlib
import json
import os
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeinfer.atomic import write_atomic

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, from PyPI (the `recipes` extra)
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]  # the repository
MODELS = ROOT / "edgeinfer" / "models"  # where --install puts a recipe's model
RECIPE_DIR = Path(__file__).resolve().parent / "recipes"
RECIPES = tuple(sorted(p.stem for p in RECIPE_DIR.glob("*.toml")))
DONE = ".recipe-done"  # in a stage's folder: the command that finished there
# the programs a stage may run: name -> (its module, with `parser()` and `main(argv)`; how a shell names it)
PROGRAMS = {"train": ("train.__main__", "python -m train"), "export": ("export.__main__", "python -m export"),
            "both": ("edgeinfer_export.both", "python -m edgeinfer_export.both"),
            "edgeinfer-train": ("edgeinfer_train.cli", "edgeinfer-train")}
RESUMABLE = ("digits", "sentiment", "characters")  # the `train` stages with --resume
LIMITED = {"digits", "sentiment", "characters", "ensemble"}  # the `train` stages with --limit


@dataclass(frozen=True)
class Stage:
    """One command of a recipe."""

    name: str  # its folder under the recipe's output, and how other stages refer to it
    program: str  # one of PROGRAMS
    args: tuple[str, ...]  # positional arguments (a `train` stage: its sub-command first)
    options: Mapping[str, Any]  # --name value (true: a flag; a list: several values)
    note: str = ""  # what the stage does, for people


@dataclass(frozen=True)
class Recipe:
    """A built-in model's recipe: what it reads, how it is made and what it reached."""

    name: str
    description: str
    data: str
    model: str  # the file the recipe builds ({STAGE} placeholders), copied by --install
    builtin: str  # the built-in model it reproduces: edgeinfer/models/BUILTIN.onnx
    minutes: float  # about how long the whole recipe takes on two cores
    reached: Mapping[str, Any]  # the shipped model's figures (docs/models.md)
    stages: tuple[Stage, ...]


def _text(raw: Mapping[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}: `{key}` must be a non-empty string")
    return value


def load_recipe(name: str | Path) -> Recipe:
    """A recipe by name (train/recipes/NAME.toml) or path; ValueError naming what is wrong."""
    path = Path(name) if isinstance(name, Path) else RECIPE_DIR / f"{name}.toml"
    if not path.is_file():
        raise ValueError(f"no recipe {name!r}; the recipes are {', '.join(RECIPES)}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a valid recipe ({exc})") from None
    where = str(path)
    stages: list[Stage] = []
    for i, s in enumerate(raw.get("stages", [])):
        at = f"{where}: stage {i + 1}"
        run = shlex.split(_text(s, "run", at))
        if run[0] not in PROGRAMS:
            raise ValueError(f"{at}: `run` must start with one of {', '.join(PROGRAMS)}, not {run[0]!r}")
        options = s.get("options", {})
        if not isinstance(options, dict):
            raise ValueError(f"{at}: `options` must be a table")
        args = [str(x) for x in s.get("args", [])]
        stage = Stage(_text(s, "name", at), run[0], (*run[1:], *args), options, str(s.get("note", "")))
        if stage.name in {st.name for st in stages} or "/" in stage.name:
            raise ValueError(f"{at}: stage names must be unique folder names ({stage.name!r})")
        stages.append(stage)
    if not stages:
        raise ValueError(f"{where}: a recipe needs at least one [[stages]] entry")
    reached = raw.get("reached", {})
    minutes = raw.get("minutes", 0)
    if not isinstance(reached, dict) or not isinstance(minutes, (int, float)):
        raise ValueError(f"{where}: `reached` must be a table and `minutes` a number")
    return Recipe(path.stem, _text(raw, "description", where), _text(raw, "data", where), _text(raw, "model", where),
                  _text(raw, "builtin", where), float(minutes), reached, tuple(stages))


def describe_recipes() -> str:
    """One line per recipe, for `python -m train --help`."""
    lines = []
    for name in RECIPES:
        try:
            r = load_recipe(name)
            stages = f"{len(r.stages)} stage" + ("s" if len(r.stages) > 1 else "")
            lines.append(f"  {name:<11} {r.description} ({stages}, about {r.minutes:g} min)")
        except ValueError as exc:
            lines.append(f"  {name:<11} (unreadable: {exc})")
    return "\n".join(lines)


def _fill(text: str, places: Mapping[str, str]) -> str:
    """`text` with its {STAGE}, {out} and {root} placeholders filled in (ValueError for an unknown one)."""
    try:
        return text.format_map(places)
    except KeyError as exc:
        raise ValueError(f"{text!r} names {exc.args[0]!r}, which is not an earlier stage") from None


def stage_argv(stage: Stage, places: Mapping[str, str], data: str | None, threads: int, limit: int) -> list[str]:
    """A stage's command-line arguments (after the program's name), placeholders filled in."""
    argv = [_fill(a, places) for a in stage.args]
    for key, value in stage.options.items():
        flag = f"--{key}"
        if value is True:
            argv.append(flag)
        elif value is False:
            continue
        elif isinstance(value, list):
            argv += [flag, *(_fill(str(v), places) for v in value)]
        else:
            argv += [flag, _fill(str(value), places)]
    if stage.program in ("train", "export"):
        argv += ["--out", places["out"]] + (["--data", data] if data else [])
        if limit and (stage.program == "export" or stage.args[0] in LIMITED):
            argv += ["--limit", str(limit)]
    if stage.program == "train" and threads:
        argv += ["--threads", str(threads)]
    return argv


def _module(name: str) -> Any:
    """The module of a stage's program (imported when a stage is checked or run)."""
    return importlib.import_module(PROGRAMS[name][0])


def check_stage(stage: Stage, argv: list[str]) -> None:
    """ValueError unless the stage's program accepts `argv` (its parser's own message on stderr)."""
    try:
        _module(stage.program).parser().parse_args(argv)
    except SystemExit as exc:
        if exc.code:
            raise ValueError(f"stage {stage.name}: {PROGRAMS[stage.program][1]} does not take these arguments "
                             "(see the line above); fix the recipe") from None


def run_recipe(name: str | Path, out: Path | None = None, *, data: str | None = None, threads: int = 0,
               start: str | None = None, limit: int = 0, dry_run: bool = False, install: bool = False) -> Path:
    """Run recipe `name`'s stages (a recipe's name, or a recipe file) in order into `out` (default
    runs/NAME); returns the model built.

    `start` runs that stage and every later one again; `limit` gives the stages that take it
    `--limit N` (a quick trial whose figures are not the recipe's); `dry_run` prints the commands
    instead; `install` copies the model over the built-in (edgeinfer/models/BUILTIN.onnx).
    ValueError when a stage fails or the recipe is unreadable.
    """
    recipe = load_recipe(name)
    out = out if out is not None else Path("runs") / recipe.name
    names = [s.name for s in recipe.stages]
    if start is not None and start not in names:
        raise ValueError(f"--from {start}: recipe {recipe.name} has the stages {', '.join(names)}")
    places = {"root": os.path.relpath(ROOT), **{s.name: str(out / s.name) for s in recipe.stages}}
    commands = [stage_argv(s, {**places, "out": str(out / s.name)}, data, threads, limit) for s in recipe.stages]
    for stage, argv in zip(recipe.stages, commands, strict=True):  # every stage checked before the first runs
        check_stage(stage, argv)
    rerun = False
    for stage, argv in zip(recipe.stages, commands, strict=True):
        folder = out / stage.name
        shown = " ".join([PROGRAMS[stage.program][1], *(shlex.quote(a) for a in argv)])
        if dry_run:
            print(shown)
            continue
        rerun = rerun or stage.name == start
        marker = folder / DONE
        if not rerun and marker.is_file() and marker.read_text(encoding="utf-8") == json.dumps(argv):
            print(f"recipe {recipe.name}: {stage.name} done before, skipped", file=sys.stderr)
            continue
        marker.unlink(missing_ok=True)
        rerun = True  # every later stage reads this one's output: run them again too
        folder.mkdir(parents=True, exist_ok=True)
        resume = stage.program == "train" and stage.args[0] in RESUMABLE and (folder / "checkpoint.pt").is_file()
        print(f"recipe {recipe.name}: {stage.name}: {shown}", file=sys.stderr)
        code = _module(stage.program).main([*argv, *(["--resume"] if resume else [])])
        if code != 0:
            raise ValueError(f"recipe {recipe.name}: stage {stage.name} failed (exit code {code}); fix what it "
                             f"said and run the recipe again (finished stages are skipped)")
        write_atomic(marker, json.dumps(argv).encode())
    model = Path(_fill(recipe.model, places))
    if install and not dry_run:
        if not model.is_file():
            raise ValueError(f"recipe {recipe.name} built no {model}")
        target = MODELS / f"{recipe.builtin}.onnx"
        write_atomic(target, model.read_bytes())
        print(f"recipe {recipe.name}: installed {model} as {target}", file=sys.stderr)
    return model


__all__ = ["RECIPES", "Recipe", "Stage", "check_stage", "describe_recipes", "load_recipe", "run_recipe", "stage_argv"]
