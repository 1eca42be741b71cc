"""The model layer: resolving a run or model folder into typed checkpoints, the checks that a corpus is
the model's, loading on a device and dtype, hidden states and hooks on a block's output."""

from __future__ import annotations

import hashlib
import shutil

import pytest

torch = pytest.importorskip("torch")

from conftest import bpe_tokenizer, generated_documents, write_jsonl  # noqa: E402
from seethrough.errors import ModelError  # noqa: E402
from seethrough.model import (edit_layer_output, last_token_hidden_states, load_model, resolve_target,  # noqa: E402
                              transformer_layers, weights_sha256)


@pytest.fixture
def run(tiny_run):
    """The shared tiny run (steps 0, 1, 2, 4), under the name these tests read best with."""
    return tiny_run


def test_a_run_resolves_to_typed_checkpoints(run):
    assert [c.step for c in resolve_target(run, "all").checkpoints] == [0, 1, 2, 4]
    assert [c.step for c in resolve_target(run).checkpoints] == [4]
    chosen = resolve_target(run, "2,last,2").checkpoints
    assert [(c.step, c.label, c.path) for c in chosen] == [(2, "step-2", run / "checkpoints/step-2"),
                                                          (4, "step-4", run / "checkpoints/step-4")]
    # the recorded hash is the run manifest's, and the weights hash is sha256 over "name:sha256\n" lines
    weights = (run / "checkpoints/step-2/model.safetensors").read_bytes()
    assert chosen[0].recorded_sha256 == hashlib.sha256(weights).hexdigest()
    line = f"model.safetensors:{hashlib.sha256(weights).hexdigest()}\n".encode()
    assert chosen[0].weights_sha256 == hashlib.sha256(line).hexdigest() == weights_sha256(run / "checkpoints/step-2")
    folder = resolve_target(run / "checkpoints/step-1")
    assert folder.run is None and [(c.step, c.label) for c in folder.checkpoints] == [(None, "step-1")]


@pytest.mark.parametrize("spec, message", [("3", "no checkpoint at step 3"), ("1.5", "use all, last"),
                                           ("２", "use all, last"), ("last,x", "use all, last")])
def test_bad_checkpoint_choices_are_refused(run, spec, message):
    with pytest.raises(ModelError, match=message) as error:
        resolve_target(run, spec)
    assert "\n" not in str(error.value)


def test_what_is_not_a_model_is_refused(run, tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        resolve_target(tmp_path / "nowhere")
    with pytest.raises(ModelError, match="neither a run folder"):
        resolve_target(tmp_path)
    with pytest.raises(ModelError, match="needs a run folder"):
        resolve_target(run / "checkpoints/step-1", "all")


def test_a_corpus_that_is_not_the_models_is_refused(run, world_corpus, tmp_path):
    from seethrough import build_corpus, open_token_corpus

    root, corpus, _, docs = world_corpus
    resolve_target(run).check_corpus(corpus)  # its own corpus
    resolve_target(run / "checkpoints/step-4").check_corpus(corpus)  # same tokenizer
    # the same tokenizer, other documents: fine for a model folder, not for the run
    write_jsonl(tmp_path / "other.jsonl", [d["text"] for d in docs[:50]])
    build_corpus([tmp_path / "other.jsonl"], root / "tokenizer.json", tmp_path / "other")
    other = open_token_corpus(tmp_path / "other")
    with pytest.raises(ModelError, match="is not the corpus run .* was trained on"):
        resolve_target(run).check_corpus(other)
    resolve_target(run / "checkpoints/step-4").check_corpus(other)
    # another tokenizer: token ids would mean other things
    bpe = bpe_tokenizer(tmp_path / "bpe.json", generated_documents(seed=3, n_docs=50), vocab=300)
    build_corpus([tmp_path / "other.jsonl"], bpe, tmp_path / "bpe")
    with pytest.raises(ModelError, match="vocabularies differ"):
        resolve_target(run / "checkpoints/step-4").check_corpus(open_token_corpus(tmp_path / "bpe"))


def test_loading_checks_the_recorded_hash_device_and_dtype(run, tmp_path):
    checkpoint = resolve_target(run, "1").last
    model = load_model(checkpoint, threads=1)
    assert next(model.parameters()).dtype == torch.float32 and not model.training
    assert next(load_model(checkpoint, dtype="bfloat16", threads=1).parameters()).dtype == torch.bfloat16
    with pytest.raises(ModelError, match="--dtype 'int8' is not one of"):
        load_model(checkpoint, dtype="int8")
    with pytest.raises(ModelError, match="not a device"):
        load_model(checkpoint, device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ModelError, match="no CUDA device"):
            load_model(checkpoint, device="cuda")
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    weights = copy / "checkpoints/step-1/model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one bit of one weight
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="does not match the weights hash its run recorded"):
        load_model(resolve_target(copy, "1").last)
    weights.unlink()
    with pytest.raises(ModelError, match="has no model.safetensors"):
        load_model(resolve_target(copy, "1").last)


def test_loading_a_checkpoint_remembers_its_weights_hash_from_the_checked_file(run):
    """load_model hashes the weights file to check it; the folder's weights hash (what results record) is
    then known without reading the file again, and equals the hash computed from the folder by hand."""
    checkpoint = resolve_target(run).last
    assert "weights_sha256" not in checkpoint.__dict__
    load_model(checkpoint, threads=1)
    remembered = checkpoint.__dict__["weights_sha256"]
    file_hash = hashlib.sha256((checkpoint.path / "model.safetensors").read_bytes()).hexdigest()
    assert remembered == hashlib.sha256(f"model.safetensors:{file_hash}\n".encode()).hexdigest()
    from seethrough.model.weights import weights_sha256

    assert remembered == weights_sha256(checkpoint.path)


def test_hidden_states_and_a_hook_on_a_blocks_output(run):
    model = load_model(resolve_target(run).last, threads=1)
    n = len(transformer_layers(model))
    rows = [[1, 5, 9, 2], [3, 3], [7, 8, 9, 10], [4]]
    states = last_token_hidden_states(model, rows, batch_size=2)
    assert states.shape == (4, n + 1, model.config.hidden_size)
    for i, row in enumerate(rows):  # each row alone, read from transformers' own hidden_states
        alone = model(input_ids=torch.tensor([row]), output_hidden_states=True).hidden_states
        for layer in range(n + 1):
            assert torch.allclose(states[i, layer], alone[layer][0, -1], atol=1e-6)
    assert last_token_hidden_states(model, rows, layers=[n, 0]).shape == (4, 2, model.config.hidden_size)
    # adding v to what leaves block 1 adds exactly v to hidden_states[1]
    v = torch.linspace(-1, 1, model.config.hidden_size)
    with edit_layer_output(model, 1, lambda h: h + v):
        edited = last_token_hidden_states(model, rows, layers=[1])
    assert torch.allclose(edited[:, 0], states[:, 1] + v, atol=1e-6)
    # and what follows reads the edited state: at the last block, the logits are the head's on h + v
    # (transformers' hidden_states[n] is the last block's output after the final norm: read the raw one)
    row, raw = torch.tensor([rows[0]]), []
    with torch.inference_mode(), edit_layer_output(model, n, lambda h: raw.append(h) or h):
        model(input_ids=row)
    with torch.inference_mode(), edit_layer_output(model, n, lambda h: h + v):
        logits = model(input_ids=row).logits[0, -1]
    with torch.inference_mode():
        by_hand = model.get_output_embeddings()(model.gpt_neox.final_layer_norm(raw[0][0, -1] + v))
        assert torch.allclose(model.gpt_neox.final_layer_norm(raw[0][0, -1]), states[0, n], atol=1e-6)
    assert torch.allclose(logits, by_hand, atol=1e-5)
    after = last_token_hidden_states(model, rows, layers=[1])  # the hook is gone once the block ends
    assert torch.equal(after[:, 0], states[:, 1])
    with pytest.raises(ModelError, match=f"use 1..{n}"):
        with edit_layer_output(model, 0, lambda h: h):
            pass
    with pytest.raises(ModelError, match="outside this model"):
        last_token_hidden_states(model, rows, layers=[n + 1])


def test_a_checkpoint_with_an_intervention_keeps_its_computed_weights_hash(tmp_path):
    """``with_intervention`` carries the weights hash over (``dataclasses.replace`` drops the cache, and
    the weights were read again): the copy answers it with the weights file gone."""
    import hashlib

    from seethrough.model import Checkpoint

    (tmp_path / "model.safetensors").write_bytes(b"weights")
    checkpoint = Checkpoint(tmp_path, step=3)
    by_hand = hashlib.sha256(f"model.safetensors:{hashlib.sha256(b'weights').hexdigest()}\n".encode()).hexdigest()
    assert checkpoint.weights_sha256 == by_hand
    (tmp_path / "model.safetensors").unlink()
    copy = checkpoint.with_intervention("an eraser")
    assert (copy.intervention, copy.step, copy.weights_sha256) == ("an eraser", 3, by_hand)
    assert Checkpoint(tmp_path, step=3).with_intervention(None).intervention is None
