"""seethrough's plain-torch GPT-NeoX (model.neox) against transformers' GPTNeoXForCausalLM, the
reference: the same logits to the bit on every path the eval backend takes, on configurations that
cover each branch (parallel residual or not, attention bias or not, partial or full rotary, tied
embeddings, Pythia's legacy config keys and extra tensors); every folder it does not read completely
goes to transformers; an evaluation of a GPT-NeoX folder never imports transformers' modeling code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

CONFIGS = {
    "pythia": {},
    "sequential": {"use_parallel_residual": False, "attention_bias": False},
    "full_rotary_tied": {"rope_parameters": {"rope_type": "default", "rope_theta": 500.0,
                                             "partial_rotary_factor": 1.0}, "tie_word_embeddings": True},
}


def neox_folder(folder: Path, seed: int = 0, **overrides) -> Path:
    """A random GPT-NeoX saved by transformers (3 blocks, width 64, 4 heads, 211 tokens)."""
    config = transformers.GPTNeoXConfig(vocab_size=211, hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                                        intermediate_size=96, max_position_embeddings=128, **overrides)
    torch.manual_seed(seed)
    model = transformers.GPTNeoXForCausalLM(config)
    with torch.no_grad():  # layer norms away from 1/0 and biases away from 0, so that a mix-up shows
        for name, parameter in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                parameter.add_(torch.randn_like(parameter) * 0.3)
    model.save_pretrained(folder)
    return folder


def both(folder: Path, dtype: str = "float32", in_place: bool = False):
    """transformers' model and seethrough's of ``folder``. transformers reads float32 weights in place
    from the file, where a small matrix product's last bits depend on each tensor's offset in it
    (measured: a copy of the same weights changes transformers' own result), so unless ``in_place``
    its weights are moved to memory of torch's own, as seethrough's are."""
    from seethrough.model import load_model
    from seethrough.model.neox import NeoXForCausalLM

    reference = load_model(folder, dtype=dtype, implementation="transformers")
    mine = load_model(folder, dtype=dtype, implementation="auto")
    assert isinstance(mine, NeoXForCausalLM) and not isinstance(reference, NeoXForCausalLM)
    if not in_place:
        for parameter in reference.parameters():
            parameter.data = parameter.data.clone()
    return reference, mine


def packed_inputs(batch: int, length: int):
    """A 4-D mask and positions as the backend's packed rows have them: a prefix of 12, then two
    continuations that each see the prefix and themselves."""
    mask = torch.ones(batch, 1, length, length, dtype=torch.bool).tril()
    mask[:, :, 20:, 12:20] = False
    positions = torch.arange(length).repeat(batch, 1)
    positions[:, 20:] -= 8
    return mask, positions


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_the_same_logits_as_transformers_to_the_bit(tmp_path, name, dtype):
    from seethrough.evaluate.invariant import tiled_linear_layers

    reference, mine = both(neox_folder(tmp_path / name, **CONFIGS[name]), dtype)
    ids = torch.randint(0, 211, (3, 29), generator=torch.Generator().manual_seed(1))
    mask, positions = packed_inputs(3, 29)
    with torch.inference_mode():
        assert torch.equal(reference(input_ids=ids).logits, mine(input_ids=ids).logits)
        assert torch.equal(reference(input_ids=ids, attention_mask=mask, position_ids=positions).logits,
                           mine(input_ids=ids, attention_mask=mask, position_ids=positions).logits)
        kept = []
        for model in (reference, mine):  # the backend's one-token path: tiles, the last position only
            with tiled_linear_layers(model, 512, 128, reuse_output=True):
                kept.append(model(input_ids=ids, logits_to_keep=1).logits.clone())
        assert torch.equal(*kept)
        # the backend's generation: a prefill, then one token at a time on the cache, then several
        a, b = reference(input_ids=ids[:1, :9], use_cache=True), mine(input_ids=ids[:1, :9], use_cache=True)
        assert torch.equal(a.logits, b.logits)
        for k in range(9, 14):
            a = reference(input_ids=ids[:1, k:k + 1], use_cache=True, cache=a.cache, logits_to_keep=1)
            b = mine(input_ids=ids[:1, k:k + 1], use_cache=True, cache=b.cache, logits_to_keep=1)
            assert torch.equal(a.logits, b.logits)
        a = reference(input_ids=ids[:1, 14:20], use_cache=True, cache=a.cache)
        b = mine(input_ids=ids[:1, 14:20], use_cache=True, cache=b.cache)
        assert torch.equal(a.logits, b.logits)  # new positions after cached ones: the causal mask aligned right


def test_against_transformers_weights_read_in_place_the_logits_agree_to_rounding(tmp_path):
    """With transformers' weights left where it reads them (in the file's memory), untiled products
    of a strided slice (``logits_to_keep``) or of one row (a cached decoding step) may round
    differently; they agree to float32 rounding, and the greedy tokens are the same."""
    reference, mine = both(neox_folder(tmp_path / "m"), in_place=True)
    ids = torch.randint(0, 211, (5, 17), generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        a, b = reference(input_ids=ids, logits_to_keep=1).logits, mine(input_ids=ids, logits_to_keep=1).logits
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
        assert a.shape == b.shape == (5, 1, 211) and torch.equal(a.argmax(-1), b.argmax(-1))
        a, b = reference(input_ids=ids, use_cache=True), mine(input_ids=ids, use_cache=True)
        step = ids[:, :1]
        torch.testing.assert_close(reference(input_ids=step, use_cache=True, cache=a.cache).logits,
                                   mine(input_ids=step, use_cache=True, cache=b.cache).logits, rtol=1e-6, atol=1e-6)


def test_hooks_see_the_same_blocks_and_position_ids(tmp_path):
    """What erasers and steering vectors hook: each block's output, with the block's position_ids
    (a steering vector from a start position reads them), and the output layer."""
    from seethrough.model import edit_layer_output, transformer_layers

    reference, mine = both(neox_folder(tmp_path / "m"))
    assert [n for n, _ in reference.named_parameters()] == [
        n.replace("embed_out", "lm_head") for n, _ in mine.named_parameters()]
    assert len(transformer_layers(mine)) == 3 and mine.get_output_embeddings() is mine.embed_out
    ids = torch.randint(0, 211, (2, 15), generator=torch.Generator().manual_seed(3))
    seen = {}
    outputs = []
    for name, model in (("reference", reference), ("mine", mine)):
        def steer(_module, _args, kwargs, output, name=name):
            seen[name] = kwargs["position_ids"].clone()
            return output + (kwargs["position_ids"] >= 7)[..., None] * 0.5

        handle = transformer_layers(model)[1].register_forward_hook(steer, with_kwargs=True)
        try:
            with torch.inference_mode(), edit_layer_output(model, 3, lambda h: h * 0.9):
                outputs.append(model(input_ids=ids).logits)
        finally:
            handle.remove()
    assert torch.equal(seen["reference"], seen["mine"])
    assert torch.equal(*outputs)


def test_pythias_legacy_config_and_tensors_load_as_transformers_loads_them(tmp_path):
    """Pythia's config on the Hub says rotary_pct / rotary_emb_base and leaves attention_bias and
    layer_norm_eps to their defaults, and its weights carry ``attention.bias`` / ``masked_bias`` /
    ``rotary_emb.inv_freq`` tensors that transformers ignores."""
    from safetensors.torch import load_file, save_file

    folder = neox_folder(tmp_path / "legacy")
    config = json.loads((folder / "config.json").read_text())
    rope = config.pop("rope_parameters")
    config.update(rotary_pct=rope["partial_rotary_factor"], rotary_emb_base=rope["rope_theta"])
    del config["attention_bias"], config["layer_norm_eps"]  # Pythia's leave them to the defaults
    (folder / "config.json").write_text(json.dumps(config))
    tensors = load_file(folder / "model.safetensors")
    for block in range(3):
        tensors[f"gpt_neox.layers.{block}.attention.bias"] = torch.ones(1, 1, 128, 128, dtype=torch.bool).tril()
        tensors[f"gpt_neox.layers.{block}.attention.masked_bias"] = torch.tensor(-1e9)
        tensors[f"gpt_neox.layers.{block}.attention.rotary_emb.inv_freq"] = torch.zeros(2)
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    reference, mine = both(folder)
    ids = torch.randint(0, 211, (2, 21), generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        assert torch.equal(reference(input_ids=ids).logits, mine(input_ids=ids).logits)


def test_rope_scaling_comes_before_rope_parameters_as_in_transformers(tmp_path):
    folder = neox_folder(tmp_path / "both", rope_parameters={"rope_type": "default", "rope_theta": 500.0,
                                                             "partial_rotary_factor": 0.5})
    config = json.loads((folder / "config.json").read_text())
    config["rope_scaling"] = {"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.25}
    (folder / "config.json").write_text(json.dumps(config))
    reference, mine = both(folder)
    assert (mine.config.rope_theta, mine.config.rotary_fraction) == (10000.0, 0.25)
    ids = torch.randint(0, 211, (2, 13), generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        assert torch.equal(reference(input_ids=ids).logits, mine(input_ids=ids).logits)


@pytest.mark.parametrize("change, why", [
    ({"config": {"num_attention_heads": 0}}, "a shape that is no shape"),
    ({"config": {"hidden_size": "64"}}, "a value of the wrong type"),
    ({"config": {"attention_bias": "yes"}}, "a flag that is not a bool"),
    ({"config": {"rope_parameters": {"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0}}}, "rope scaling"),
    ({"config": {"hidden_act": "gelu_new"}}, "another activation"),
    ({"config": {"quantization_config": {"quant_method": "bitsandbytes"}}}, "a key it does not know"),
    ({"config": {"model_type": "llama"}}, "another architecture"),
    ({"tensor": "gpt_neox.layers.0.attention.extra.weight"}, "a tensor it does not expect"),
    ({"drop": "gpt_neox.final_layer_norm.bias"}, "a missing tensor"),
    ({"file": "model-00002-of-00002.safetensors"}, "a second weights file"),
])
def test_a_folder_it_does_not_read_completely_goes_to_transformers(tmp_path, change, why):
    from safetensors.torch import load_file, save_file

    from seethrough.model import load_model
    from seethrough.model.neox import load_neox, read_config

    folder = neox_folder(tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    config.update(change.get("config", {}))
    (folder / "config.json").write_text(json.dumps(config))
    if "tensor" in change or "drop" in change:
        tensors = load_file(folder / "model.safetensors")
        tensors.pop(change.get("drop", ""), None)
        if "tensor" in change:
            tensors[change["tensor"]] = torch.zeros(3)
        save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    if "file" in change:
        save_file({"x": torch.zeros(1)}, folder / change["file"])
    parsed = read_config(folder)
    assert parsed is None or load_neox(folder, parsed, torch.float32) is None, why
    if "config" not in change:  # transformers itself loads these (warning about the odd tensor)
        assert not type(load_model(folder, implementation="auto")).__module__.startswith("seethrough")


@pytest.mark.parametrize("implementation", ["auto", "transformers"])
def test_a_damaged_weights_file_is_a_one_line_error(tmp_path, implementation):
    """A truncated model.safetensors in a plain model folder (no run hash to check it against): the
    plain loader leaves it to transformers, whose error becomes one line naming the folder."""
    from seethrough.errors import ModelError
    from seethrough.model import load_model

    folder = neox_folder(tmp_path / "m")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ModelError, match=f"cannot load model {folder}: .*header"):
        load_model(folder, implementation=implementation)
    assert weights.stat().st_size == 1000  # left as it was


def test_the_backend_scores_and_generates_the_same_with_either_implementation(tmp_path):
    """lm-eval requests through the backend: one-token, several-token (packed rows) and rolling
    log-likelihoods and greedy generation, with ``implementation=transformers`` and the default."""
    from lm_eval.api.instance import Instance

    from seethrough.evaluate.backend import SeethroughLM
    from conftest import world_model_folder

    folder = world_model_folder(tmp_path / "world", 64, seed=3)
    words = [w for w in json.loads((folder / "tokenizer.json").read_text())["model"]["vocab"] if w.isalpha()][:40]
    pairs = [(" ".join(words[i:i + 5]), " " + " ".join(words[i + 5:i + 5 + n])) for i in range(12) for n in (1, 3)]
    requests = [Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(pairs)]
    rolling = [Instance("loglikelihood_rolling", {}, (" ".join(words[i:i + 30]),), i) for i in range(3)]
    generate = [Instance("generate_until", {}, (" ".join(words[i:i + 6]), {"until": ["\n"], "max_gen_toks": 8}), i)
                for i in range(4)]
    answers = {}
    for implementation in ("transformers", "auto"):
        lm = SeethroughLM(str(folder), implementation=implementation, threads=1)
        answers[lm.implementation] = (lm.loglikelihood(requests), lm.loglikelihood_rolling(rolling),
                                      lm.generate_until(generate))
    assert set(answers) == {"transformers", "seethrough.model.neox"}
    assert answers["transformers"] == answers["seethrough.model.neox"]
    with pytest.raises(Exception, match="implementation 'fast' is not one of transformers, auto"):
        SeethroughLM(str(folder), implementation="fast")


def test_an_evaluation_of_a_neox_folder_never_imports_transformers_modeling_code(tmp_path):
    """The start-up this module exists for: in a fresh process, ``evaluate_model`` on a GPT-NeoX
    folder records the plain implementation, and neither transformers' modeling code nor torch's
    dynamo was imported (together 2.8 s of a one-item evaluation here)."""
    from conftest import world_model_folder

    folder = world_model_folder(tmp_path / "model", 64, seed=1)
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "items.jsonl").write_text("".join(json.dumps({"q": f"w{i}", "choices": [" a", " b"], "gold": 0}) + "\n"
                                               for i in range(3)))
    (tasks / "t.yaml").write_text(
        f"task: startup_probe\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {tasks / 'items.jsonl'}\n"
        "test_split: test\noutput_type: multiple_choice\ndoc_to_text: \"{{q}}\"\ndoc_to_choice: \"{{choices}}\"\n"
        "doc_to_target: \"{{gold}}\"\nmetric_list:\n  - metric: acc\n")
    code = (
        "import sys, json\n"
        "from seethrough.evaluate import evaluate_model\n"
        f"r = evaluate_model({str(folder)!r}, ['startup_probe'], include_path={str(tasks)!r}, limit=2, threads=1)\n"
        "print(json.dumps([r.provenance['model']['implementation'], sorted(m for m in sys.modules if m in\n"
        "  ('transformers.modeling_utils', 'transformers.models.gpt_neox.modeling_gpt_neox', 'torch._dynamo'))]))\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    implementation, heavy = json.loads(done.stdout.strip().splitlines()[-1])
    assert implementation == "seethrough.model.neox" and heavy == []


# ---- the tokenizer, without transformers where it is exactly tokenizer.json -------------------------

TEXTS = ["the cat sat", "  two  spaces\tand a tab\n", "<|endoftext|>after the end", "mid<|endoftext|>word",
         "naïve café 日本 😀 über", "", " leading", "trailing ", "unknownword zzz qqq", "a\n\nb"]


def bpe_folder(folder: Path, **config) -> Path:
    """A byte-level BPE tokenizer.json with <|endoftext|> as a special token, and a tokenizer config."""
    from tokenizers import AddedToken

    from conftest import bpe_tokenizer, generated_documents

    folder.mkdir(parents=True, exist_ok=True)
    path = bpe_tokenizer(folder / "tokenizer.json", generated_documents(2, 200) + TEXTS)
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.add_special_tokens([AddedToken("<|endoftext|>", special=True)])
    tokenizer.save(str(path))
    settings = {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "<|endoftext|>",
                "bos_token": "<|endoftext|>", "unk_token": None, "model_max_length": 77,
                "clean_up_tokenization_spaces": False, **config}
    (folder / "tokenizer_config.json").write_text(json.dumps({k: v for k, v in settings.items() if v != "drop"}))
    return folder


@pytest.mark.parametrize("kind", ["bpe", "word_level"])
def test_the_plain_tokenizer_encodes_and_decodes_as_auto_tokenizer(tmp_path, kind):
    from seethrough.model.tokenizer import PlainTokenizer, load_model_tokenizer
    from conftest import world_model_folder

    folder = bpe_folder(tmp_path / "bpe") if kind == "bpe" else world_model_folder(tmp_path / "world", 32, seed=0)
    mine, reference = load_model_tokenizer(folder), transformers.AutoTokenizer.from_pretrained(str(folder))
    assert isinstance(mine, PlainTokenizer)
    texts = TEXTS + [" ".join(json.loads((folder / "tokenizer.json").read_text())["model"]["vocab"])[:400]]
    for special in (False, True):
        assert [mine.encode(t, add_special_tokens=special) for t in texts] == [
            reference.encode(t, add_special_tokens=special) for t in texts]
        assert mine(texts, add_special_tokens=special)["input_ids"] == reference(
            texts, add_special_tokens=special)["input_ids"]
    ids = [reference.encode(t, add_special_tokens=False) for t in texts] + [[mine.eos_token_id, 3, mine.eos_token_id]]
    for skip in (False, True):
        assert [mine.decode(i, skip_special_tokens=skip) for i in ids] == [
            reference.decode(i, skip_special_tokens=skip) for i in ids]
    assert (mine.eos_token_id, mine.model_max_length) == (reference.eos_token_id, reference.model_max_length)
    some = list(range(0, mine.backend_tokenizer.get_vocab_size(), 7))
    assert mine.convert_ids_to_tokens(some) == reference.convert_ids_to_tokens(some)


@pytest.mark.parametrize("file, content", [("tokenizer_config.json", b""), ("tokenizer.json", b"\xff\xfe{"),
                                           ("tokenizer.json", b"[1, 2")])
def test_a_damaged_tokenizer_file_is_a_one_line_error(tmp_path, file, content):
    from seethrough.errors import ModelError
    from seethrough.model.tokenizer import load_model_tokenizer

    folder = bpe_folder(tmp_path / "bpe")
    (folder / file).write_bytes(content)
    with pytest.raises(ModelError, match=f"cannot load the tokenizer of model {folder}: "):
        load_model_tokenizer(folder)
    assert (folder / file).read_bytes() == content


@pytest.mark.parametrize("config, extra_file", [
    ({"tokenizer_class": "GPTNeoXTokenizer"}, None),
    ({"clean_up_tokenization_spaces": True}, None),
    ({"eos_token": "</s>", "bos_token": "</s>"}, None),  # not a special token of the file: transformers adds it
    ({"add_bos_token": True}, None),
    ({}, "special_tokens_map.json"),
    ({"model_max_length": "drop"}, "added_tokens.json"),
    ({"eos_token": {"__type": "AddedToken", "content": "<|endoftext|>", "special": True}}, None),
    ({}, "config.json"),  # a model type whose tokenizer class AutoTokenizer picks itself
])
def test_a_tokenizer_transformers_builds_on_goes_to_auto_tokenizer(tmp_path, config, extra_file):
    from seethrough.model.tokenizer import PlainTokenizer, load_model_tokenizer

    folder = bpe_folder(tmp_path / "bpe", **config)
    if extra_file:
        (folder / extra_file).write_text(json.dumps({"model_type": "qwen2"}) if extra_file == "config.json" else "{}")
    assert not isinstance(load_model_tokenizer(folder), PlainTokenizer)
