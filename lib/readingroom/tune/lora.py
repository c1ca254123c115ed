"""A LoRA adapter for the generator, trained with peft on the library's examples.

    from readingroom.tune.lora import LoraSettings, train_lora
    result = train_lora("smollm2-135m-instruct-q4_1", examples, LoraSettings(max_steps=20), name="faq-smol")

The base model is the GGUF the answers run on, dequantised by transformers
(generate.py keeps a bf16 safetensors copy of it); training runs in float32
on the CPU, in bf16 on a GPU when there is one.

The loop is a plain one (forward, backward, AdamW step) with what a long
run on a laptop needs around it:
- a held-out split, by passage (dataset.split), scored every `eval_every`
  steps; early stopping when it has not improved for `patience` scores, and
  the adapter kept is the one with the best held-out loss;
- a checkpoint every `checkpoint_every` steps (adapter, optimizer state and
  progress, all in safetensors and JSON: nothing is pickled), under a
  folder named by the base model, the data and the settings; a run started
  again with the same three continues from its last checkpoint (a run that
  finished removes its checkpoint: the next one starts afresh). The batch
  order and dropout draw from (seed, step), so a resumed run takes the same
  steps an uninterrupted one would;
- `stop_after`: stop (with a checkpoint) after that many steps in this call,
  as an interruption would; the next call resumes.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from readingroom.models.resolve import resolve
from readingroom.tune.build import passage_of
from readingroom.tune.dataset import Example, dataset_sha256, split
from readingroom.tune.registry import tuned_dir

IGNORE = -100  # label of tokens the loss leaves out (the prompt, padding)


@dataclass(frozen=True)
class LoraSettings:
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    learning_rate: float = 2e-4
    batch_size: int = 4
    max_steps: int = 100
    max_length: int = 768
    held_out: float = 0.2
    eval_every: int = 10
    patience: int = 3
    checkpoint_every: int = 10
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self) | {"targets": list(self.targets)}


@dataclass
class TrainResult:
    adapter_folder: Path  # the best adapter (peft files); under the name given, once saved
    steps: int  # steps taken in all, resumed ones included
    resumed_from: int  # the step this call started at (0: a fresh run)
    stopped: str  # "max_steps", "early stopping", "interrupted" (stop_after)
    history: list[dict] = field(default_factory=list)  # {"step", "loss"} and {"step", "eval_loss"}
    best_eval_loss: float | None = None
    base_eval_loss: float | None = None  # of the base model, before step 1
    train_examples: int = 0
    held_out_examples: int = 0
    seconds: float = 0.0  # of this call
    steps_per_second: float = 0.0  # of this call's training steps alone
    dataset_sha256: str = ""
    device: str = "cpu"

    @property
    def interrupted(self) -> bool:
        return self.stopped == "interrupted"


# --- data -------------------------------------------------------------------------------

def prompt_and_response(tokenizer, example: Example) -> tuple[str, str]:
    """The text the model reads and the text it should write: a question
    inside the answer prompt (chat template), or a passage's start."""
    from readingroom.answer.pipeline import build_messages

    if example.kind == "continuation":
        return example.instruction + " ", example.response + (tokenizer.eos_token or "")
    messages = build_messages(example.instruction, [passage_of(s) for s in example.sources])
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    full = tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": example.response}],
                                         tokenize=False)
    # The template's own end of turn, where it has one after the answer.
    response = full[len(prompt):] if full.startswith(prompt) else example.response + (tokenizer.eos_token or "")
    return prompt, response


def encode(tokenizer, example: Example, max_length: int) -> tuple[list[int], list[int]] | None:
    """(token ids, labels), the loss on the response only; None if the
    prompt alone fills max_length."""
    prompt, response = prompt_and_response(tokenizer, example)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    response_ids = tokenizer(response, add_special_tokens=False)["input_ids"]
    ids = (prompt_ids + response_ids)[:max_length]
    labels = ([IGNORE] * len(prompt_ids) + response_ids)[:max_length]
    return (ids, labels) if any(label != IGNORE for label in labels) else None


def collate(rows, pad_id: int, device):
    import torch

    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (row_ids, row_labels) in enumerate(rows):
        ids[i, :len(row_ids)] = torch.tensor(row_ids)
        labels[i, :len(row_labels)] = torch.tensor(row_labels)
        mask[i, :len(row_ids)] = 1
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "labels": labels.to(device)}


def batch_rows(n: int, batch_size: int, step: int, seed: int) -> list[int]:
    """The examples of training step `step` (0-based): epochs of a shuffled
    order, each shuffled by (seed, epoch), so any step can be found again."""
    rows = []
    for position in range(step * batch_size, (step + 1) * batch_size):
        epoch, i = divmod(position, n)
        rows.append(int(np.random.default_rng([seed, epoch]).permutation(n)[i]))
    return rows


# --- the model ----------------------------------------------------------------------------

def default_device() -> str:
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_base(spec, device: str | None = None):
    """(network, tokenizer, resolved model) of a catalogue generator, from
    its bf16 safetensors copy (made once, see generate.py), in float32 on
    the CPU or bf16 on a GPU."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from readingroom.models.generate import check_gguf, save_bf16_copy, transformers_copy_folder
    from readingroom.models.quiet import quiet_transformers

    model = spec if hasattr(spec, "identity") else resolve(str(spec), role="generator")
    if getattr(model, "base", None) is not None:
        model = model.base  # an adapter: train on its base
    device = device or default_device()
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    folder = transformers_copy_folder(model)
    with quiet_transformers():
        if not folder.is_dir():
            save_bf16_copy(check_gguf(model.path), folder)
        network = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, use_safetensors=True,
                                                       local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    return network.to(device), tokenizer, model


def lora_model(network, settings: LoraSettings):
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                        target_modules=list(settings.targets), task_type="CAUSAL_LM")
    with warnings.catch_warnings():  # peft calls a transformers method that warns of its own rename
        warnings.simplefilter("ignore", FutureWarning)
        return get_peft_model(network, config)


def mean_loss(network, rows, pad_id: int, device, batch_size: int = 8) -> float:
    """The mean loss per response token over `rows` (perplexity = exp of it)."""
    import torch

    total, tokens = 0.0, 0
    network.eval()
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            batch = collate(rows[start:start + batch_size], pad_id, device)
            logits = network(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            labels = batch["labels"][:, 1:]
            losses = torch.nn.functional.cross_entropy(
                logits[:, :-1].float().reshape(-1, logits.shape[-1]), labels.reshape(-1),
                ignore_index=IGNORE, reduction="sum")
            total += float(losses)
            tokens += int((labels != IGNORE).sum())
    return total / max(tokens, 1)


# --- checkpoints (safetensors and JSON only) -------------------------------------------------

def run_folder(base_identity: str, data_sha256: str, settings: LoraSettings) -> Path:
    key = hashlib.sha256(json.dumps([base_identity, data_sha256, settings.to_dict()], sort_keys=True).encode())
    return tuned_dir() / ".runs" / key.hexdigest()[:20]


def _lora_state(network) -> dict:
    return {k: v.detach().clone() for k, v in network.state_dict().items() if "lora_" in k}


def save_checkpoint(folder: Path, network, optimizer, state: dict, best: dict | None) -> None:
    from safetensors.torch import save_file

    staging = folder.with_name(folder.name + ".saving")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in _lora_state(network).items()}, str(staging / "lora.safetensors"))
    if best is not None:
        save_file({k: v.contiguous() for k, v in best.items()}, str(staging / "best.safetensors"))
    tensors, groups = {}, optimizer.state_dict()
    for index, param_state in groups["state"].items():
        for key, value in param_state.items():
            tensors[f"{index}.{key}"] = value.detach().clone().contiguous().reshape(value.shape)
    save_file(tensors, str(staging / "optimizer.safetensors"))
    (staging / "state.json").write_text(json.dumps(state | {"param_groups": groups["param_groups"]}))
    # The old checkpoint goes only once the new one is complete.
    old = folder.with_name(folder.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    staging.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(folder: Path, network, optimizer) -> tuple[dict, dict | None]:
    from safetensors.torch import load_file

    state = json.loads((folder / "state.json").read_text())
    network.load_state_dict(load_file(str(folder / "lora.safetensors")), strict=False)
    tensors = load_file(str(folder / "optimizer.safetensors"))
    param_state: dict[int, dict] = {}
    for name, value in tensors.items():
        index, key = name.split(".", 1)
        param_state.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({"state": param_state, "param_groups": state.pop("param_groups")})
    best = load_file(str(folder / "best.safetensors")) if (folder / "best.safetensors").exists() else None
    return state, best


# --- training ---------------------------------------------------------------------------------

def train_lora(base, examples: list[Example], settings: LoraSettings = LoraSettings(), *, name: str | None = None,
               stop_after: int | None = None, progress: bool = True, device: str | None = None,
               save: bool = True) -> TrainResult:
    """Train (or resume training) a LoRA adapter on `base` (a generator's
    catalogue name) with `examples`; with `name`, save it as a named adapter
    with its card (readingroom.tune.adapters) once training ends."""
    import torch

    started = time.perf_counter()
    network, tokenizer, model = load_base(base, device)
    device = str(network.device)
    train, held = split(examples, settings.held_out, settings.seed)
    data_sha = dataset_sha256(examples)
    encode_all = lambda part: [r for r in (encode(tokenizer, e, settings.max_length) for e in part) if r]  # noqa: E731
    train_rows, held_rows = encode_all(train), encode_all(held)
    if not train_rows or not held_rows:
        raise ValueError("no training or held-out example fits in max_length tokens")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    torch.manual_seed(settings.seed)  # LoRA's initial weights: the same for the same seed
    network = lora_model(network, settings)
    trainable = [p for p in network.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate)
    folder = run_folder(model.identity, data_sha, settings)
    checkpoint = folder / "checkpoint"
    state = {"step": 0, "history": [], "best_eval_loss": None, "bad_evals": 0, "base_eval_loss": None,
             "stopped": None}
    best = None
    if (checkpoint / "state.json").exists():
        state, best = load_checkpoint(checkpoint, network, optimizer)
    resumed_from = state["step"]
    if state["base_eval_loss"] is None:
        state["base_eval_loss"] = mean_loss(network, held_rows, pad_id, device)
        state["history"].append({"step": 0, "eval_loss": state["base_eval_loss"]})

    trained_seconds, steps_now = 0.0, 0
    bar = tqdm(total=settings.max_steps, initial=state["step"], desc="LoRA", unit="step", disable=not progress)
    try:
        while state["stopped"] is None and state["step"] < settings.max_steps:
            if stop_after is not None and steps_now >= stop_after:
                break
            tick = time.perf_counter()
            network.train()
            torch.manual_seed(settings.seed * 1_000_003 + state["step"])  # dropout, the same on a resumed run
            rows = [train_rows[i] for i in batch_rows(len(train_rows), settings.batch_size, state["step"],
                                                      settings.seed)]
            loss = network(**collate(rows, pad_id, device)).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            trained_seconds += time.perf_counter() - tick
            state["step"] += 1
            steps_now += 1
            loss = float(loss.detach())
            state["history"].append({"step": state["step"], "loss": loss})
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}")
            if state["step"] % settings.eval_every == 0 or state["step"] == settings.max_steps:
                held_loss = mean_loss(network, held_rows, pad_id, device)
                state["history"].append({"step": state["step"], "eval_loss": held_loss})
                if state["best_eval_loss"] is None or held_loss < state["best_eval_loss"]:
                    state["best_eval_loss"], state["bad_evals"], best = held_loss, 0, _lora_state(network)
                else:
                    state["bad_evals"] += 1
                    if state["bad_evals"] >= settings.patience:
                        state["stopped"] = "early stopping"
            if state["step"] % settings.checkpoint_every == 0:
                save_checkpoint(checkpoint, network, optimizer, state, best)
    finally:
        bar.close()
    done = state["stopped"] is not None or state["step"] >= settings.max_steps
    if done:  # the next run with the same base, data and settings starts afresh
        shutil.rmtree(checkpoint, ignore_errors=True)
    else:
        save_checkpoint(checkpoint, network, optimizer, state, best)
    stopped = state["stopped"] or ("max_steps" if done else "interrupted")
    if best is not None:
        network.load_state_dict(best, strict=False)
    adapter_folder = folder / "adapter"
    network.save_pretrained(str(adapter_folder), safe_serialization=True)
    result = TrainResult(
        adapter_folder, state["step"], resumed_from, stopped, state["history"], state["best_eval_loss"],
        state["base_eval_loss"], len(train_rows), len(held_rows), time.perf_counter() - started,
        steps_now / trained_seconds if trained_seconds else 0.0, data_sha, device)
    if done and name and save:
        from readingroom.tune.adapters import save_adapter

        result.adapter_folder = save_adapter(name, adapter_folder, model, settings, result)
    return result
