"""`edgeinfer info` and `edgeinfer models`: what a model file holds, and the built-in models."""
from __future__ import annotations

from edgeinfer.cli.args import Parser, add_json, describe, runs
from edgeinfer.cli.render import describe_spec, emit_json, model_line, show
from edgeinfer.model import Model, builtin_models
from edgeinfer.session import resolve_providers


def configure_info(p: Parser) -> None:
    """`edgeinfer info MODEL`."""
    p.description = describe(info)
    p.add_argument("model", help="model file or built-in name")
    p.add_argument("--provider", help="also load both graphs on this execution provider (a check that they run there)")
    add_json(p)
    runs(p, info)


def info(model: str, provider: str | None = None, as_json: bool = False) -> None:
    """Print a model's spec: task, labels, architecture, state, precision, metrics, provenance.

    With --provider, both graphs are also loaded on that provider (a check that they run there).
    """
    m = Model(model, provider)
    size = len(m.file.data)
    sessions = ""
    if provider is not None:
        m.load_sessions()
        sessions = ", ".join(m.sequence_session.get_providers())
    if as_json:
        emit_json({"file": str(m.path), "bytes": size, "file_format": m.spec.format_version, **m.spec.to_dict()},
                  indent=2)
        return
    for line in describe_spec(m.spec, f"{m.path} ({size:,} bytes)", sessions):
        show(line)


def configure_models(p: Parser) -> None:
    """`edgeinfer models`."""
    p.description = describe(models)
    p.add_argument("--provider", help="check that this execution provider is available first")
    runs(p, models)


def models(provider: str | None = None) -> None:
    """List the built-in models (with --provider: after checking that provider is available)."""
    if provider is not None:
        print(f"providers: {', '.join(resolve_providers(provider))}")
    for name, path in builtin_models().items():
        model_line(name, Model(path).spec, path.stat().st_size)
