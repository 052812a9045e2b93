"""Inits (gaussian, pissa, corda, scorda, scorda_rev, antipasto) and pair calibration."""

from __future__ import annotations

import pytest
import torch
from tokenizers import Regex, Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

from vgrout.adapter import INITS, PAIR_INITS, AdapterConfig, attach, contrastive_input_deltas, find_targets
from vgrout.adapter.init import corda_basis, hack_axes
from vgrout.types import HackPair

CHARS = [chr(i) for i in range(32, 127)] + ["\n"]
V = len(CHARS) + 1


def tiny_model(seed: int = 0) -> Qwen3ForCausalLM:
    torch.manual_seed(seed)
    cfg = Qwen3Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      head_dim=8, intermediate_size=64, vocab_size=V, max_position_embeddings=256)
    return Qwen3ForCausalLM(cfg).eval()


def char_tokenizer() -> PreTrainedTokenizerFast:
    """One token per character, with a small chat template: no download needed."""
    vocab = {"<unk>": 0, **{c: i + 1 for i, c in enumerate(CHARS)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("[\\s\\S]"), behavior="isolated")
    template = ("{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}\n{% endfor %}"
                "{% if add_generation_prompt %}[assistant]{% endif %}")
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", chat_template=template)


def random_calibration(model, targets, P: int = 3, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {n: torch.randn(P, lin.in_features, generator=gen) + 0.5 for n, lin in find_targets(model, targets).items()}


PAIRS = [
    HackPair(id=f"p{i}", mode="run_tests", messages=({"role": "system", "content": "Be exact."},
                                                      {"role": "user", "content": f"Sum {i} numbers."}),
             hack="```python\ndef run_tests():\n    return True\n```", clean=f"```python\nreturn sum(x[:{i}])\n```")
    for i in range(3)
]


@pytest.mark.parametrize("init", INITS)
def test_every_init_leaves_the_logits_of_the_base_model(init):
    model = tiny_model()
    ids = torch.randint(0, V, (2, 11), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        base = model(ids).logits
    cfg = AdapterConfig(r=4, init=init)
    calib = random_calibration(model, cfg.targets) if init in PAIR_INITS else None
    adapter = attach(model, cfg, calibration=calib)
    with torch.no_grad():
        out = model(ids).logits
    assert (out - base).abs().max() <= 1e-5
    assert torch.equal(out, base)  # in fact exact: the frozen term is computed by the same ops
    for layer in adapter.layers.values():
        assert torch.count_nonzero(layer.deployed.weight_delta()) == 0
        assert torch.count_nonzero(layer.quarantine.weight_delta()) == 0


def test_gaussian_blocks_are_matched_and_seeded():
    a1 = attach(tiny_model(), AdapterConfig(r=4, init_seed=7))
    a2 = attach(tiny_model(), AdapterConfig(r=4, init_seed=7))
    a3 = attach(tiny_model(), AdapterConfig(r=4, init_seed=8))
    name = a1.module_names[0]
    assert torch.equal(a1.layers[name].deployed.A0, a2.layers[name].deployed.A0)
    assert not torch.equal(a1.layers[name].deployed.A0, a3.layers[name].deployed.A0)
    d_in = a1.layers[name].base.in_features
    for block in ("deployed", "quarantine"):  # both blocks drawn from N(0, 1/d_in)
        var = a1.layers[name].block(block).A0.var().item()
        assert 0.5 / d_in < var < 2.0 / d_in


def test_pissa_interleaves_the_top_singular_vectors():
    model = tiny_model()
    W = model.model.layers[0].self_attn.q_proj.weight.detach().clone()
    adapter = attach(model, AdapterConfig(r=3, init="pissa"))
    layer = adapter.layers["model.layers.0.self_attn.q_proj"]
    U, _, Vh = torch.linalg.svd(W)
    for block, comps in (("deployed", [0, 2, 4]), ("quarantine", [1, 3, 5])):
        b = layer.block(block)
        torch.testing.assert_close(b.A0.abs(), Vh[comps].abs(), atol=1e-5, rtol=0)
        torch.testing.assert_close(b.B0.abs(), U[:, comps].abs(), atol=1e-5, rtol=0)


def test_corda_basis_matches_a_dense_computation():
    gen = torch.Generator().manual_seed(0)
    W, D = torch.randn(12, 10, generator=gen, dtype=torch.float64), torch.randn(3, 10, generator=gen, dtype=torch.float64)
    U, S, Vh = corda_basis(W, D, 4)
    a = 1e-3 * float(D.pow(2).sum()) / 3 / 10
    evals, evecs = torch.linalg.eigh(D.T @ D / 3 + a * torch.eye(10, dtype=torch.float64))
    C_half = evecs @ torch.diag(evals.sqrt()) @ evecs.T
    U2, S2, Q2 = torch.linalg.svd(W.double() @ C_half)
    torch.testing.assert_close(S.double(), S2[:4], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(Vh.double().abs(), (Q2[:4] @ C_half).abs(), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(U.double().abs(), U2[:, :4].abs(), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("init,seeded,clean", [("scorda", "quarantine", "deployed"), ("scorda_rev", "deployed", "quarantine")])
def test_scorda_puts_the_signed_hack_axis_in_one_block_only(init, seeded, clean):
    model = tiny_model()
    cfg = AdapterConfig(r=4, init=init)
    calib = random_calibration(model, cfg.targets)
    weights = {n: lin.weight.detach().clone() for n, lin in find_targets(model, cfg.targets).items()}
    adapter = attach(model, cfg, calibration=calib)
    for name, layer in adapter.layers.items():
        u_in, u_out = hack_axes(weights[name], calib[name])
        assert torch.dot(u_in, calib[name].mean(0)) > 0  # signed: points from clean to hack
        s, c = layer.block(seeded), layer.block(clean)
        torch.testing.assert_close(s.A0[0], u_in, atol=1e-6, rtol=0)  # +polarity, first slot
        torch.testing.assert_close(s.B0[:, 0], u_out, atol=1e-6, rtol=0)
        assert (s.A0[1:] @ u_in).abs().max() < 1e-5 and (c.A0 @ u_in).abs().max() < 1e-5
        assert (s.B0[:, 1:].T @ u_out).abs().max() < 1e-5 and (c.B0.T @ u_out).abs().max() < 1e-5
        assert torch.count_nonzero(layer.deployed.weight_delta()) == 0
        assert torch.count_nonzero(layer.quarantine.weight_delta()) == 0


def test_antipasto_trains_gains_ablates_to_zero_and_has_no_probe():
    model = tiny_model()
    cfg = AdapterConfig(r=3, init="antipasto")
    adapter = attach(model, cfg, calibration=random_calibration(model, cfg.targets))
    ids = torch.randint(0, V, (2, 7), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        base = model(ids).logits
        for p in adapter.parameters("all"):
            p.add_(0.3)
        trained = model(ids).logits
        with adapter.mode("deployed"):
            deployed = model(ids).logits
    assert not torch.equal(trained, base) and not torch.equal(trained, deployed)
    adapter.ablate_quarantine()
    assert all(torch.count_nonzero(p) == 0 for p in adapter.parameters("quarantine"))
    with torch.no_grad():
        assert torch.equal(model(ids).logits, deployed)
    with pytest.raises(ValueError, match="no gradient probe"):
        with adapter.grad_probe():
            pass


@pytest.mark.parametrize("init", PAIR_INITS)
def test_pair_inits_need_calibration(init):
    with pytest.raises(ValueError, match="needs calibration"):
        attach(tiny_model(), AdapterConfig(r=2, init=init))


def test_calibration_errors_name_the_problem():
    model = tiny_model()
    cfg = AdapterConfig(r=2, init="scorda")
    calib = random_calibration(model, cfg.targets)
    with pytest.raises(ValueError, match="does not read calibration"):
        attach(model, AdapterConfig(r=2), calibration=calib)
    first = sorted(calib)[0]
    with pytest.raises(ValueError, match="calibration keys do not match"):
        attach(model, cfg, calibration={k: v for k, v in calib.items() if k != first})
    with pytest.raises(ValueError, match=f"calibration for {first} has shape"):
        attach(model, cfg, calibration={**calib, first: calib[first][:, :5]})
    with pytest.raises(ValueError, match="all zeros"):
        attach(model, cfg, calibration={**calib, first: torch.zeros_like(calib[first])})
    assert not any(type(m).__name__ == "BlockLinear" for m in model.modules())  # failed attach wraps nothing


def test_contrastive_input_deltas_pool_completion_inputs():
    model, tok = tiny_model(), char_tokenizer()
    targets = ("q_proj", "down_proj")
    deltas = contrastive_input_deltas(model, tok, PAIRS, targets)
    names = sorted(find_targets(model, targets))
    assert sorted(deltas) == names
    name = "model.layers.1.mlp.down_proj"
    assert deltas[name].shape == (3, 64)
    # Recompute pair 1 by hand: prompt and completion ids concatenated, inputs pooled after the prompt.
    prompt = tok.apply_chat_template(list(PAIRS[1].messages), add_generation_prompt=True, tokenize=False)
    assert prompt.endswith("[assistant]")
    seen = {}
    lin = model.get_submodule(name)
    h = lin.register_forward_pre_hook(lambda m, a: seen.__setitem__("x", a[0]))
    pooled = []
    try:
        for text in (PAIRS[1].hack, PAIRS[1].clean):
            ids = tok(prompt, add_special_tokens=False)["input_ids"]
            n = len(ids)
            ids = ids + tok(text, add_special_tokens=False)["input_ids"]
            assert n == len(prompt) and len(ids) == len(prompt) + len(text)  # one token per char
            with torch.no_grad():
                model(torch.tensor([ids]))
            pooled.append(seen["x"][0, n:].mean(0))
    finally:
        h.remove()
    torch.testing.assert_close(deltas[name][1], pooled[0] - pooled[1], atol=1e-5, rtol=1e-5)
    # And the deltas feed scorda end to end.
    cfg = AdapterConfig(r=2, targets=targets, init="scorda")
    ids = torch.randint(0, V, (1, 9))
    with torch.no_grad():
        base = model(ids).logits
    attach(model, cfg, calibration=deltas)
    with torch.no_grad():
        assert torch.equal(model(ids).logits, base)
