"""Index helpers for splitting and batching labelled data: stratified splits, stratified
k-fold cross-validation and class-balanced minibatches.

All of them return *indices* into your arrays (so one call serves ``x`` and ``y`` alike)
and take their randomness from a seed or a ``numpy.random.Generator``, so the same seed
always gives the same split.

"Stratified" means every class keeps its share: with 20 % positives in ``y``, each fold
(and each side of a split) has 20 % positives too, up to rounding. Without it, a small
validation set can by chance hold almost no positives, and its AUC or sensitivity is noise.

>>> import numpy as np
>>> y = np.array([0, 0, 0, 0, 0, 0, 0, 0, 1, 1])
>>> train_idx, val_idx = stratified_split(y, 0.5, seed=0)
>>> np.bincount(y[val_idx]).tolist()
[4, 1]
>>> [np.bincount(y[v]).tolist() for _, v in stratified_kfold(y, 2, seed=0)]
[[4, 1], [4, 1]]
"""
import numpy as np

from tinycnn.init import as_generator

__all__ = ["stratified_split", "split_size", "stratified_kfold", "balanced_batches"]


def _labels(y, where):
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{where}: labels must be a 1-D array of class indices (N,); got shape {y.shape}")
    if y.size == 0:
        raise ValueError(f"{where}: labels are empty")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.equal(np.mod(y, 1), 0)):
            raise ValueError(f"{where}: labels must be integer class indices; got dtype {y.dtype}")
    return y


def _class_members(y, rng):
    """For each class present in ``y`` (ascending), its indices in random order."""
    return [rng.permutation(np.flatnonzero(y == c)) for c in np.unique(y)]


def split_size(n, fraction):
    """How many of a class's ``n`` samples :func:`stratified_split` puts in its second
    part: ``round(fraction · n)`` (Python's rounding: halves go to the even number).

    >>> split_size(10, 0.2), split_size(5, 0.1)
    (2, 0)
    """
    return int(round(fraction * n))


def stratified_split(y, fraction, seed=0):
    """Split indices in two, keeping each class's share on both sides.

    Parameters
    ----------
    y : (N,) int array of class labels.
    fraction : float in (0, 1), the share that goes to the *second* part (validation or
        test); per class ``round(fraction * n_c)`` samples.
    seed : int or Generator.

    Returns
    -------
    (first_idx, second_idx) : two int64 index arrays, each in random order, disjoint, and
    together covering ``range(N)``.
    """
    y = _labels(y, "stratified_split")
    if not 0.0 < float(fraction) < 1.0:
        raise ValueError(f"stratified_split: fraction must be in (0, 1); got {fraction}")
    rng = as_generator(seed)
    first, second = [], []
    for members in _class_members(y, rng):
        n_second = split_size(len(members), fraction)
        second.append(members[:n_second])
        first.append(members[n_second:])
    first = rng.permutation(np.concatenate(first)).astype(np.int64)
    second = rng.permutation(np.concatenate(second)).astype(np.int64)
    return first, second


def stratified_kfold(y, k=5, seed=0):
    """Yield ``k`` pairs ``(train_idx, val_idx)`` for stratified k-fold cross-validation.

    Each class's samples are shuffled and dealt into ``k`` near-equal chunks; fold ``i``
    validates on chunk ``i`` of every class and trains on the rest. Every sample is in
    exactly one validation fold. Index arrays are sorted (int64).

    Raises ``ValueError`` if ``k < 2`` or a class has fewer than ``k`` samples (some fold
    would have none of it, and its metrics would be undefined).
    """
    y = _labels(y, "stratified_kfold")
    k = int(k)
    if k < 2:
        raise ValueError(f"stratified_kfold: k must be at least 2; got {k}")
    classes, counts = np.unique(y, return_counts=True)
    if counts.min() < k:
        c = classes[np.argmin(counts)]
        raise ValueError(
            f"stratified_kfold: class {c} has only {counts.min()} samples, fewer than k={k} "
            "folds; use a smaller k or more data"
        )
    rng = as_generator(seed)
    chunks = [np.array_split(members, k) for members in _class_members(y, rng)]
    for i in range(k):
        val_idx = np.sort(np.concatenate([c[i] for c in chunks])).astype(np.int64)
        mask = np.ones(len(y), dtype=bool)
        mask[val_idx] = False
        yield np.flatnonzero(mask).astype(np.int64), val_idx


def balanced_batches(y, batch_size, rng=None, num_batches=None):
    """Yield minibatch index arrays in which every class is equally represented.

    The usual fix for class imbalance at the sampling level: with 20 % positives a plain
    shuffled batch of 64 holds about 13 positives; a balanced batch holds 32. Each class
    draws from its own shuffled queue of its samples, reshuffled when used up, so minority
    samples are repeated (over-sampled) and majority samples are all still seen over time.

    Parameters
    ----------
    y : (N,) int labels.
    batch_size : int, at least the number of classes. When it does not divide evenly, the
        leftover slots go to randomly chosen classes (different ones each batch).
    rng : Generator, int seed or None.
    num_batches : batches to yield; default ``ceil(N / batch_size)`` (one "epoch").

    Yields
    ------
    (batch_size,) int64 index arrays, in random order within the batch.
    """
    y = _labels(y, "balanced_batches")
    rng = as_generator(rng)
    classes = np.unique(y)
    K = len(classes)
    batch_size = int(batch_size)
    if batch_size < K:
        raise ValueError(
            f"balanced_batches: batch_size={batch_size} is smaller than the number of classes ({K})"
        )
    if num_batches is None:
        num_batches = -(-len(y) // batch_size)
    members = [np.flatnonzero(y == c) for c in classes]
    queues = [rng.permutation(m) for m in members]
    heads = [0] * K
    for _ in range(int(num_batches)):
        counts = np.full(K, batch_size // K)
        counts[rng.choice(K, size=batch_size % K, replace=False)] += 1
        parts = []
        for j in range(K):
            need = int(counts[j])
            while need > 0:
                if heads[j] == len(queues[j]):      # queue used up: reshuffle this class
                    queues[j], heads[j] = rng.permutation(members[j]), 0
                take = min(need, len(queues[j]) - heads[j])
                parts.append(queues[j][heads[j]:heads[j] + take])
                heads[j] += take
                need -= take
        yield rng.permutation(np.concatenate(parts)).astype(np.int64)
