"""Where Reading Room runs, and the settings that fit there.

On a laptop or a workstation the notebooks run with the parameters written in
them and the chat with the default generator. A Binder session (mybinder.org)
has about 2 GB of memory for the notebook server and every kernel together
and a share of a CPU: the default generator, Qwen2.5-Coder-1.5B (1.4 GB once
loaded), does not fit there beside torch, MiniLM and the library's vectors,
and neither does EmbeddingGemma (1.2 GB). So on Binder the chat and the
notebooks use the small generator and the sizes the test suite runs, and the
first cell of each notebook says so.

Binder is recognised by the variables BinderHub sets in every session
(BINDER_LAUNCH_HOST, BINDER_REPO_URL, BINDER_REQUEST ...), or by
READINGROOM_DEPLOYMENT=binder, which binder/start sets, so that an image built
by repo2docker and run anywhere else behaves the same.

`python -m readingroom.deployment models` prints the models a Binder image
needs (binder/postBuild fetches them); `python -m readingroom.deployment`
says where it runs and with what.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

DEPLOYMENT_VARIABLE = "READINGROOM_DEPLOYMENT"
# What BinderHub puts in the environment of every session it starts.
BINDERHUB_VARIABLES = ("BINDER_LAUNCH_HOST", "BINDER_REPO_URL", "BINDER_REF_URL", "BINDER_REQUEST",
                       "BINDER_PERSISTENT_REQUEST")
BINDER = "binder"
LOCAL = "local"

# The generator a 2 GB session holds beside torch, MiniLM and the vectors:
# SmolLM2-135M (98 MB file). The chat's kernel over the default library
# (27,000 vectors, most of them random ones of the same size for the
# measurement) peaked at 1.24 GB RSS answering a question with it, and
# at 1.66 GB with Qwen2.5-Coder-0.5B, which leaves the notebook server and
# anything else too little of 2 GB (measured on this project's 2-core
# machine; tests/test_binder.py checks the chat in 2 GiB).
BINDER_GENERATOR = "smollm2-135m-instruct-q4_1"
BINDER_EMBEDDER = "all-minilm-l6-v2"


@dataclass(frozen=True)
class Deployment:
    """A place Reading Room runs: its name, what to tell a reader about it,
    the generator the chat uses there (None: the default one), and, per
    notebook, the parameters that take other values there."""

    name: str
    about: str
    generator: str | None = None
    notebook_parameters: Mapping[str, Mapping[str, object]] = field(default_factory=dict)

    def fit(self, notebook: str, **parameters):
        """`parameters` (the notebook's values, by name) as they run here:
        unchanged, except for those this deployment gives `notebook` other
        values for; where any are replaced, prints which (a notebook's first
        cell output). Returns the value for one parameter, a tuple of values
        in the order given for several, None for none."""
        replaced = dict(self.notebook_parameters.get(notebook, {}))
        unknown = sorted(set(replaced) - set(parameters))
        if unknown:
            raise ValueError(f"{notebook}: the {self.name} settings replace {', '.join(unknown)}, "
                             "which the notebook does not pass to fit()")
        values = {name: replaced.get(name, value) for name, value in parameters.items()}
        if self.name != LOCAL:
            print(self.note(notebook, parameters, values))
        found = tuple(values.values())
        return found[0] if len(found) == 1 else (found or None)

    def note(self, notebook: str, before: Mapping[str, object], after: Mapping[str, object]) -> str:
        changes = [f"{name} = {after[name]!r} (instead of {before[name]!r})"
                   for name in before if after[name] != before[name]]
        if not changes:
            return f"{self.about} This notebook's parameters fit as they are."
        return f"{self.about} So this notebook runs with:\n" + "\n".join(f"  {c}" for c in changes)


BINDER_DEPLOYMENT = Deployment(
    name=BINDER,
    about=("On Binder: about 2 GB of memory and a share of one CPU, so the small generator "
           f"({BINDER_GENERATOR}: its answers are poor, mostly copied passages) and test-size settings."),
    generator=BINDER_GENERATOR,
    notebook_parameters={
        # EmbeddingGemma (1.2 GB) does not fit beside torch: section 4 has
        # MiniLM in its place (so it shows MiniLM alone); fewer passages.
        "02_embedding": {"SAMPLE_PASSAGES": 200, "MULTILINGUAL_MODEL": BINDER_EMBEDDER},
        # OpenVINO's export of MiniLM alone peaked at 1.3 GB: torch makes the
        # same vectors in less memory, more slowly.
        "03_retrieval": {"EMBEDDING_BACKEND": "torch"},
        # One generator, the small one, and no comparison of models.
        "04_answering": {"GENERATOR": BINDER_GENERATOR, "SMALLER": [], "EMBEDDING_BACKEND": "torch"},
        "06_chat": {"MODEL": BINDER_GENERATOR},
        "08_study": {"GENERATOR": BINDER_GENERATOR, "MAX_PASSAGES": 3},
    },
)
LOCAL_DEPLOYMENT = Deployment(name=LOCAL, about="Here: the parameters as written.")


def on_binder(environ: Mapping[str, str] | None = None) -> bool:
    """True in a Binder session: READINGROOM_DEPLOYMENT=binder (binder/start
    sets it; =local says no), else any of BinderHub's variables."""
    environ = os.environ if environ is None else environ
    said = environ.get(DEPLOYMENT_VARIABLE, "").strip().lower()
    if said in (BINDER, LOCAL):  # said outright, it wins
        return said == BINDER
    return any(environ.get(name) for name in BINDERHUB_VARIABLES)


def current(environ: Mapping[str, str] | None = None) -> Deployment:
    """The deployment this process runs in."""
    return BINDER_DEPLOYMENT if on_binder(environ) else LOCAL_DEPLOYMENT


def fit(notebook: str, **parameters):
    """A notebook's parameters as they run here (see Deployment.fit)."""
    return current().fit(notebook, **parameters)


def binder_models() -> list[str]:
    """The catalogue models a Binder image fetches when it is built."""
    return [BINDER_EMBEDDER, BINDER_GENERATOR]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["models"]:
        print(" ".join(binder_models()))
        return 0
    if args:
        print("usage: python -m readingroom.deployment [models]", file=sys.stderr)
        return 2
    here = current()
    print(f"{here.name}: {here.about}")
    print(f"generator: {here.generator or 'the default one'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
