"""Models the explainer tests open: LeNet-5, the lesion CNN and one with every layer type."""
import json
import re

import numpy as np

import tinycnn as tc
from tinycnn import layers
from tinycnn.models import lenet5, lesion_cnn, resnet_mini


def every_layer():
    """Conv with padding and stride 2, both pools, every activation, dropout, flatten, dense."""
    return tc.Sequential(
        layers.Conv2D(2, 4, kernel_size=3, stride=2, padding=1, rng=0), layers.LeakyReLU(0.1),
        layers.Conv2D(4, 5, kernel_size=3, padding=1, rng=1), layers.Tanh(),
        layers.MaxPool2D(2), layers.AvgPool2D(2, stride=1), layers.ReLU(),
        layers.Dropout(0.5, rng=0), layers.Flatten(), layers.Dense(5 * 2 * 2, 6, rng=2),
        layers.Sigmoid(), layers.Dense(6, 3, rng=3),
        input_shape=(2, 12, 12),
    )


def with_biases(model, seed=0):
    """Non-zero biases, so every sum in the page has a bias term worth checking."""
    rng = np.random.default_rng(seed)
    for p in model.parameters():
        if p.name == "bias":
            p.data[...] = 0.1 * rng.standard_normal(p.data.shape)
    return model


def small_resnet():
    """BatchNorm (with learned-looking running statistics), residual blocks, global pooling."""
    model = resnet_mini(in_channels=1, num_classes=4, widths=(3, 5), blocks_per_stage=1, input_size=8, rng=0)
    rng = np.random.default_rng(1)
    model.forward(rng.random((6, 1, 8, 8)).astype(np.float32))      # running statistics move
    return model


MODELS = {"lenet5": lambda: with_biases(lenet5(rng=0)),
          "lesion_cnn": lambda: with_biases(lesion_cnn(rng=0)),
          "every_layer": lambda: with_biases(every_layer()),
          "resnet": small_resnet}


def image_for(model, seed=0):
    shape = tuple(model.meta["input_shape"])
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def page_data(page):
    """The JSON data block an explainer page embeds, parsed (what the page's script reads)."""
    block = re.search(r'<script type="application/json" id="tinycnn-data">(.*?)</script>', page, re.S)
    return json.loads(block.group(1).replace("<\\/", "</"))
