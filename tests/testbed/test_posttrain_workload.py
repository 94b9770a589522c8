"""Post-training pieces: LoRA starts equal to the base and trains; REINFORCE moves the policy."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from inspectorate.models._gpt import GPT, preset  # noqa: E402
from inspectorate.testbed.phases import DEFAULT_PHASES, PHASES  # noqa: E402
from inspectorate.testbed.posttrain import Plan, add_lora, policy_loss, reward, set_adapters  # noqa: E402


def test_lora_is_the_base_until_trained_and_switches_off():
    torch.manual_seed(0)
    model = GPT(preset("micro")).eval()
    x = torch.randint(0, 65, (2, 12))
    before = model(x)[0].detach()
    params = add_lora(model)
    assert torch.allclose(model(x)[0], before)
    loss = policy_loss(model, [[1, 2, 3]] * 2, [[4, 5], [6, 7]], [1.0, -1.0])
    loss.backward()
    torch.optim.SGD(params, lr=1.0).step()
    assert not torch.allclose(model(x)[0], before, atol=1e-6)
    set_adapters(model, False)
    assert torch.allclose(model(x)[0], before)
    assert all(not p.requires_grad for n, p in model.named_parameters() if "lora" not in n)


def test_phases_claim_serving_and_stay_out_of_the_default_schedule():
    pt = [p for p in PHASES.values() if p.workload == "posttrain_serving"]
    assert len(pt) == 2 * 2 * 2 * 2 * 4  # sizes x modes x updates x variants x k
    assert sum(p.workload == "logged_serving" for p in PHASES.values()) == 2 * 8
    assert all(p.claimed.activity == "inference" and p.adversarial for p in pt)
    assert not any(p.name in DEFAULT_PHASES for p in pt)
    plan = Plan.of(PHASES["pt_rl_lora_competent_k100_small"].params)
    assert (plan.k, plan.update, plan.optimizer, plan.serve, plan.save) == (100, "lora", "sgd", "frozen", 0)
    assert reward([1, 2, 3, 4], {1, 2}) == 0.5
