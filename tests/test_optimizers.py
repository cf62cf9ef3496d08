"""The recipe's optimizers (benchmark/engine/optimizers.py): weight decay on every parameter or, as
the KL-MSE code, not on BN parameters and biases; RepDistiller's stage SGD."""

import torch

from benchmark.engine.optimizers import make_optimizer, stage_optimizer

RECIPE = {"optimizer": {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4, "wd_on_bn_bias": True}}


def _net():
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(4, 2))


def test_weight_decay_on_all_or_only_on_the_weights_of_rank_two_and_more():
    net = _net()
    net[2].bias.requires_grad_(False)  # frozen: in no group
    opt = make_optimizer(net, RECIPE)
    assert len(opt.param_groups) == 1 and len(opt.param_groups[0]["params"]) == 5
    g = opt.param_groups[0]
    assert (g["lr"], g["momentum"], g["nesterov"], g["weight_decay"]) == (0.1, 0.9, True, 5e-4)
    klmse = make_optimizer(net, {"optimizer": {**RECIPE["optimizer"], "wd_on_bn_bias": False}})
    decay, no_decay = klmse.param_groups
    assert [p is q for p, q in zip(decay["params"], (net[0].weight, net[2].weight))] == [True, True]
    assert len(decay["params"]) == 2 and decay["weight_decay"] == 5e-4
    assert len(no_decay["params"]) == 3 and no_decay["weight_decay"] == 0.0  # conv bias, BN weight and bias


def test_the_stage_optimizer_takes_each_trainable_parameter_once_at_its_rate():
    net = _net()
    opt, params = stage_optimizer([net[0], net, net[1]], 0.05, RECIPE)
    assert [id(p) for p in params] == [id(p) for p in net.parameters()]  # net[0]'s first, no repeats
    g = opt.param_groups[0]
    assert (g["lr"], g["momentum"], g["weight_decay"], g["nesterov"]) == (0.05, 0.9, 5e-4, False)
