"""Ready-made architectures, written out layer by layer so they read like the paper."""
import numpy as np

from tinycnn import layers
from tinycnn.init import as_generator
from tinycnn.model import Sequential

__all__ = ["lenet5", "lesion_cnn", "resnet_mini"]


def lenet5(in_channels=1, num_classes=10, input_size=28, rng=0, dtype=np.float32):
    """LeNet-5 (LeCun et al., 1998) with ReLU and max-pooling: 61,706 parameters on 1×28×28.

    conv 5×5 (pad 2) → ReLU → pool 2 → conv 5×5 → ReLU → pool 2 → 120 → 84 → classes.
    ``input_size`` (square images) sets the width of the first dense layer.
    """
    rng = as_generator(rng)
    side = ((input_size // 2) - 4) // 2          # 28 → 28 → 14 → 10 → 5
    if side < 1:
        raise ValueError(f"lenet5: input_size must be at least 12, got {input_size}")
    return Sequential(
        layers.Conv2D(in_channels, 6, kernel_size=5, padding=2, rng=rng, dtype=dtype),
        layers.ReLU(),
        layers.MaxPool2D(2),
        layers.Conv2D(6, 16, kernel_size=5, rng=rng, dtype=dtype),
        layers.ReLU(),
        layers.MaxPool2D(2),
        layers.Flatten(),
        layers.Dense(16 * side * side, 120, rng=rng, dtype=dtype),
        layers.ReLU(),
        layers.Dense(120, 84, rng=rng, dtype=dtype),
        layers.ReLU(),
        # no ReLU follows the last layer, so He's factor 2 (which makes up for ReLU zeroing
        # half of each layer's outputs) has no reason here: Xavier, var 2/(fan_in + fan_out)
        layers.Dense(84, num_classes, init="xavier", rng=rng, dtype=dtype),
        input_shape=(in_channels, input_size, input_size),
    )


def lesion_cnn(in_channels=1, num_classes=2, input_size=32, widths=(8, 16, 32), rng=0,
               dtype=np.float32):
    """A small detector for "is there a lesion anywhere in this patch?": 5,954 parameters
    on 1×32×32 with the default widths.

    conv 3×3 (pad 1) → ReLU → pool 2 → conv 3×3 → ReLU → pool 2 → conv 3×3 → ReLU →
    global max-pool → dense → classes. Three 3×3 convs with two poolings see an 18×18
    window (:func:`tinycnn.receptive_field`), wider than the simulated lesions; tutorial 11
    measures that for the small ones a 7-pixel field does as well. The global
    max-pool (a ``MaxPool2D`` as large as the last feature map) asks "did any window fire?",
    so the answer does not depend on *where* the lesion is. ``input_size`` must be a
    multiple of 4 (e.g. 32, or 28 for MedMNIST).
    """
    rng = as_generator(rng)
    if input_size < 8 or input_size % 4:
        raise ValueError(f"lesion_cnn: input_size must be a multiple of 4 and at least 8, got {input_size}")
    if len(widths) != 3:
        raise ValueError(f"lesion_cnn: widths must hold three channel counts, got {widths!r}")
    c1, c2, c3 = (int(w) for w in widths)
    return Sequential(
        layers.Conv2D(in_channels, c1, kernel_size=3, padding=1, rng=rng, dtype=dtype),
        layers.ReLU(),
        layers.MaxPool2D(2),
        layers.Conv2D(c1, c2, kernel_size=3, padding=1, rng=rng, dtype=dtype),
        layers.ReLU(),
        layers.MaxPool2D(2),
        layers.Conv2D(c2, c3, kernel_size=3, padding=1, rng=rng, dtype=dtype),
        layers.ReLU(),
        layers.MaxPool2D(input_size // 4),          # global max-pool: (c3, s, s) -> (c3, 1, 1)
        layers.Flatten(),
        layers.Dense(c3, num_classes, init="xavier", rng=rng, dtype=dtype),
        input_shape=(in_channels, input_size, input_size),
    )


def _basic_block(c_in, c_out, stride, rng, dtype):
    """conv 3×3 (stride) → BN → ReLU → conv 3×3 → BN, plus a shortcut; then ReLU outside.

    The shortcut is the identity when the shape is kept, else a strided 1×1 conv → BN that
    maps ``(c_in, H, W)`` to ``(c_out, H/stride, W/stride)`` (He et al. 2016, option B).
    """
    shortcut = None
    if stride != 1 or c_in != c_out:
        shortcut = [layers.Conv2D(c_in, c_out, kernel_size=1, stride=stride, bias=False, rng=rng, dtype=dtype),
                    layers.BatchNorm2D(c_out, dtype=dtype)]
    return layers.Residual(
        layers.Conv2D(c_in, c_out, kernel_size=3, stride=stride, padding=1, bias=False, rng=rng, dtype=dtype),
        layers.BatchNorm2D(c_out, dtype=dtype),
        layers.ReLU(),
        layers.Conv2D(c_out, c_out, kernel_size=3, padding=1, bias=False, rng=rng, dtype=dtype),
        layers.BatchNorm2D(c_out, dtype=dtype),
        shortcut=shortcut,
    )


def resnet_mini(in_channels=1, num_classes=10, widths=(16, 32, 64), blocks_per_stage=2,
                input_size=28, rng=0, dtype=np.float32):
    """A small ResNet for 28×28 to 64×64 images: 174,970 parameters with the defaults.

    stem: conv 3×3 (no bias) → BatchNorm → ReLU; then one stage per width, each
    ``blocks_per_stage`` residual blocks (two 3×3 convs with BatchNorm), every stage after
    the first starting with a stride-2 block (a strided 1×1 conv + BN on its shortcut);
    then global average pooling and a dense layer to the classes. The convolutions have no
    bias: the BatchNorm after each supplies the shift (β).
    """
    rng = as_generator(rng)
    widths = tuple(int(w) for w in widths)
    if not widths or min(widths) < 1:
        raise ValueError(f"resnet_mini: widths must be positive channel counts, got {widths!r}")
    if int(blocks_per_stage) < 1:
        raise ValueError(f"resnet_mini: blocks_per_stage must be >= 1, got {blocks_per_stage}")
    if input_size < 2 ** (len(widths) - 1):
        raise ValueError(f"resnet_mini: input_size {input_size} is too small for {len(widths)} stages")
    seq = [layers.Conv2D(in_channels, widths[0], kernel_size=3, padding=1, bias=False, rng=rng, dtype=dtype),
           layers.BatchNorm2D(widths[0], dtype=dtype), layers.ReLU()]
    c_in = widths[0]
    for stage, width in enumerate(widths):
        for block in range(int(blocks_per_stage)):
            stride = 2 if stage > 0 and block == 0 else 1
            seq += [_basic_block(c_in, width, stride, rng, dtype), layers.ReLU()]
            c_in = width
    seq += [layers.GlobalAvgPool2D(),
            layers.Dense(c_in, num_classes, init="xavier", rng=rng, dtype=dtype)]
    return Sequential(*seq, input_shape=(in_channels, input_size, input_size))
