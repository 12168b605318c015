"""
D12 · Confusion matrix of the digits classifier
===============================================

*Lecture topic:* Classification, evaluating a classifier (notes 001, 002)

A small CNN (two 3x3 convolutions, max pooling, one linear layer) trained on
75 % of the 8x8 scikit-learn digits, evaluated on the other 25 %. Row ``i``,
column ``j`` of the confusion matrix counts the test digits of class ``i``
predicted as ``j``: the diagonal holds the correct predictions, and the few
off-diagonal cells show which digits the network confuses. The most frequent
mistakes are shown on the right.
"""

# %%
# Train the shared digits CNN (scripts/_digits.py) and predict the test set.
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import LogNorm
from sklearn.metrics import confusion_matrix

from netviz.gallery import fast, pick, setup
from netviz.plot.theme import CMAP_SEQUENTIAL

setup()

if str(Path(__file__).resolve().parent) not in sys.path:  # the shared _digits.py beside this script
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _digits import train_digits_cnn

model, data, losses = train_digits_cnn(steps=pick(150, 40))
with torch.no_grad():
    predictions = model(data.x_test).argmax(dim=1)
labels = data.y_test

# %%
# The confusion matrix, counted with one bincount: cell (true, predicted).
n_classes = 10
confusion = torch.bincount(labels * n_classes + predictions, minlength=n_classes**2).reshape(
    n_classes, n_classes
)
test_accuracy = confusion.diagonal().sum().item() / confusion.sum().item()
per_class_recall = (confusion.diagonal() / confusion.sum(dim=1)).tolist()
wrong = (predictions != labels).nonzero().flatten()

# %%
# Left: the matrix with its counts. Right: misclassified test digits.
fig = plt.figure(figsize=(12.8, 7.2 * 0.8), layout="constrained")
left, right = fig.subfigures(1, 2, squeeze=False, width_ratios=[1.25, 1])[0]
ax = left.subplots()
shown = np.ma.masked_equal(confusion.numpy(), 0)  # empty cells stay white
im = ax.imshow(
    shown,
    cmap=CMAP_SEQUENTIAL,
    norm=LogNorm(vmin=1, vmax=int(confusion.max())),
)
for i in range(n_classes):
    for j in range(n_classes):
        count = int(confusion[i, j])
        if count:
            ax.text(
                j,
                i,
                str(count),
                ha="center",
                va="center",
                fontsize=11,
                color="black" if count > 20 else "white",
                weight="bold" if i != j else None,
            )
ax.set_xticks(range(n_classes))
ax.set_yticks(range(n_classes), [f"{c}  ({r:.0%})" for c, r in enumerate(per_class_recall)])
ax.set_xlabel("predicted class")
ax.set_ylabel("true class  (recall)")
ax.set_title(f"{len(labels)} test digits, accuracy {test_accuracy:.1%}")
cbar = left.colorbar(im, ax=ax, label="count (log scale)", shrink=0.85)
count_ticks = [t for t in (1, 2, 5, 10, 20, 40, 100) if t <= int(confusion.max())]
cbar.set_ticks(count_ticks, labels=[str(t) for t in count_ticks])
cbar.minorticks_off()

n_show = min(len(wrong), 12)
grid = right.subplots(3, 4)
for k, a in enumerate(grid.flat):
    a.set_xticks([])
    a.set_yticks([])
    if k >= n_show:
        a.set_axis_off()
        continue
    i = int(wrong[k])
    a.imshow(data.x_test[i, 0].numpy(), cmap="gray_r", vmin=0, vmax=1)
    a.set_title(f"true {int(labels[i])} → {int(predictions[i])}", fontsize=11)
right.suptitle(f"misclassified test digits ({len(wrong)} in all)", fontsize=12)
fig.suptitle("D12 · Confusion matrix of a small CNN on the 8x8 digits")

# %%
# Checks: the matrix equals scikit-learn's, rows sum to the class counts, and
# after full training the network classifies > 95 % of the test digits.
assert np.array_equal(
    confusion.numpy(), confusion_matrix(labels.numpy(), predictions.numpy(), labels=range(10))
)
assert confusion.sum(dim=1).tolist() == torch.bincount(labels, minlength=10).tolist()
assert len(labels) == 454  # every 4th digit of each class
if not fast():
    assert test_accuracy > 0.95, test_accuracy

plt.show()  # a window when run by hand; nothing under the gallery builder (Agg)
