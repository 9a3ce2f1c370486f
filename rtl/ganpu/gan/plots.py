"""PNG figures (matplotlib Agg): sample grids and loss curves."""

import os

import numpy as np

__all__ = ["save_grid", "save_losses"]


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_grid(path, images, title="", n=64):
    """Save up to ``n`` 8x8 images (values in [-1, 1]) as a square grid."""
    plt = _plt()
    images = np.asarray(images)[:n].reshape(-1, 8, 8)
    side = int(np.ceil(np.sqrt(len(images))))
    grid = np.full((side * 9, side * 9), -1.0)
    for i, im in enumerate(images):
        r, c = divmod(i, side)
        grid[r * 9:r * 9 + 8, c * 9:c * 9 + 8] = im
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(grid, cmap="gray_r", vmin=-1, vmax=1)
    ax.set_axis_off()
    ax.set_title(title)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def save_losses(path, history, title=""):
    """Save D and G loss curves from a GAN history list."""
    plt = _plt()
    steps = [h["step"] for h in history]
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(steps, [h["d_loss"] for h in history], label="D loss")
    ax.plot(steps, [h["g_loss"] for h in history], label="G loss")
    ax.set_xlabel("step")
    ax.legend()
    ax.set_title(title)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
