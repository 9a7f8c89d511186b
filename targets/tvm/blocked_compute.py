"""The tensor expressions of the channel-blocked layout NCHW[x]c (``blocked_layout``): the edge
transforms, the blocked convolution (input blocked, or plain NCHW for a stem with fewer input
channels than a block), the blocked depthwise convolution, and the weights packed to match.

Hand-written because TVM 0.27's Relax legalization refuses a ``relax.nn.conv2d`` whose layouts
have a channel block ("cannot be legalized by TOPI at this moment"), and TOPI's
``conv2d_NCHWc`` reduces over one fused input-channel axis (indexed ``ic // x`` and ``ic % x``),
which the schedule rule (``blocked_window``) would have to split again; here the reduction axes
are (input block, kh, kw, lane within the block) in that order, and the lane is innermost.

Channels that are not a multiple of the block are padded: data with zeros at the entry
transform, weights and per-channel constants with zeros. Every op kept in the blocked region
keeps a padded channel finite, and a padded input channel only meets zero weights, so the real
channels are exact; the exit transform drops the padded ones.
"""

from __future__ import annotations

import numpy as np


def blocks(channels: int, lanes: int) -> int:
    return -(-channels // lanes)


def pack(x, lanes: int):
    """NCHW -> NCHW[x]c, channels padded with zeros up to a whole block."""
    from tvm import te, tirx

    n, c, h, w = (int(d) for d in x.shape)

    def value(i, cb, y, z, ci):
        ch = cb * lanes + ci
        if c % lanes == 0:
            return x[i, ch, y, z]
        return tirx.if_then_else(ch < c, x[i, tirx.min(ch, c - 1), y, z], tirx.const(0.0, x.dtype))

    return te.compute((n, blocks(c, lanes), h, w, lanes), value, name="pack_nchwc")


def unpack(y, channels: int):
    """NCHW[x]c -> NCHW with ``channels`` channels (the padded ones dropped)."""
    from tvm import te

    n, _cb, h, w, lanes = (int(d) for d in y.shape)
    return te.compute((n, channels, h, w), lambda i, c, r, s: y[i, c // lanes, r, s, c % lanes], name="unpack_nchwc")


def _padded(x, pads, spatial_axes=(2, 3)):
    """``x`` with zero rows/columns (pads: top, left, bottom, right) around its spatial axes."""
    from tvm import te, tirx

    if not any(pads):
        return x
    top, left, bottom, right = pads
    ha, wa = spatial_axes
    shape = [int(d) for d in x.shape]
    h, w = shape[ha], shape[wa]
    shape[ha] += top + bottom
    shape[wa] += left + right

    def value(*idx):
        y, z = idx[ha] - top, idx[wa] - left
        inside = tirx.all(y >= 0, y < h, z >= 0, z < w)
        src = list(idx)
        src[ha] = tirx.max(tirx.min(y, h - 1), 0)
        src[wa] = tirx.max(tirx.min(z, w - 1), 0)
        return tirx.if_then_else(inside, x[tuple(src)], tirx.const(0.0, x.dtype))

    return te.compute(tuple(shape), value, name="pad_nchwc")


def _out_size(size: int, k: int, stride: int, dilation: int, before: int, after: int) -> int:
    return (size + before + after - dilation * (k - 1) - 1) // stride + 1


def conv_blocked(x, w, strides, pads, dilation):
    """Dense conv: x (N, ICB, H, W, x), w (OCB, ICB, KH, KW, x_in, x_out) -> (N, OCB, OH, OW, x)."""
    return _blocked_sum(x, w, strides, pads, dilation, lambda ob, rc: rc, "conv2d_nchwc")


def conv_blocked_grouped(x, w, strides, pads, dilation, groups: int):
    """Grouped conv whose groups are whole blocks: x (N, ICB, H, W, x), w (OCB, ICB / groups, KH,
    KW, x_in, x_out) -> (N, OCB, OH, OW, x); output block ``ob`` reads its group's input blocks."""
    per_group, icb = int(w.shape[0]) // groups, int(w.shape[1])
    return _blocked_sum(
        x, w, strides, pads, dilation, lambda ob, rc: ob // per_group * icb + rc, "grouped_conv2d_nchwc"
    )


def _blocked_sum(x, w, strides, pads, dilation, input_block, name: str):
    """The blocked conv sum, output block ``ob`` reading input block ``input_block(ob, rc)``."""
    from tvm import te

    n, _icb_all, h, wd, lanes = (int(d) for d in x.shape)
    ocb, icb, kh, kw = (int(d) for d in w.shape[:4])
    (sh, sw), (dh, dw) = strides, dilation
    oh = _out_size(h, kh, sh, dh, pads[0], pads[2])
    ow = _out_size(wd, kw, sw, dw, pads[1], pads[3])
    xp = _padded(x, pads)
    rc, ry, rx, ri = (te.reduce_axis((0, e), name=nm) for e, nm in ((icb, "rc"), (kh, "ry"), (kw, "rx"), (lanes, "ri")))
    return te.compute(
        (n, ocb, oh, ow, lanes),
        lambda i, ob, y, z, oi: te.sum(
            xp[i, input_block(ob, rc), y * sh + ry * dh, z * sw + rx * dw, ri] * w[ob, rc, ry, rx, ri, oi],
            axis=[rc, ry, rx, ri],
        ),
        name=name,
    )


def conv_from_nchw(x, w, strides, pads, dilation):
    """Dense conv reading NCHW (a stem's few channels, never padded to a block): x (N, C, H, W),
    w (OCB, C, KH, KW, x_out) -> (N, OCB, OH, OW, x)."""
    from tvm import te

    n, _c, h, wd = (int(d) for d in x.shape)
    ocb, c, kh, kw, lanes = (int(d) for d in w.shape)
    (sh, sw), (dh, dw) = strides, dilation
    oh = _out_size(h, kh, sh, dh, pads[0], pads[2])
    ow = _out_size(wd, kw, sw, dw, pads[1], pads[3])
    xp = _padded(x, pads)
    rc, ry, rx = (te.reduce_axis((0, e), name=nm) for e, nm in ((c, "rc"), (kh, "ry"), (kw, "rx")))
    return te.compute(
        (n, ocb, oh, ow, lanes),
        lambda i, ob, y, z, oi: te.sum(
            xp[i, rc, y * sh + ry * dh, z * sw + rx * dw] * w[ob, rc, ry, rx, oi], axis=[rc, ry, rx]
        ),
        name="conv2d_nchw_in_nchwc",
    )


def depthwise_blocked(x, w, strides, pads, dilation):
    """Depthwise conv: x (N, CB, H, W, x), w (CB, KH, KW, x) -> (N, CB, OH, OW, x)."""
    from tvm import te

    n, cb, h, wd, lanes = (int(d) for d in x.shape)
    kh, kw = int(w.shape[1]), int(w.shape[2])
    (sh, sw), (dh, dw) = strides, dilation
    oh = _out_size(h, kh, sh, dh, pads[0], pads[2])
    ow = _out_size(wd, kw, sw, dw, pads[1], pads[3])
    xp = _padded(x, pads)
    ry, rx = te.reduce_axis((0, kh), name="ry"), te.reduce_axis((0, kw), name="rx")
    return te.compute(
        (n, cb, oh, ow, lanes),
        lambda i, b, y, z, ci: te.sum(
            xp[i, b, y * sh + ry * dh, z * sw + rx * dw, ci] * w[b, ry, rx, ci], axis=[ry, rx]
        ),
        name="depthwise_conv2d_nchwc",
    )


def _pad_axis(a: np.ndarray, axis: int, lanes: int) -> np.ndarray:
    extra = blocks(a.shape[axis], lanes) * lanes - a.shape[axis]
    if not extra:
        return a
    widths = [(0, 0)] * a.ndim
    widths[axis] = (0, extra)
    return np.pad(a, widths)


def block_diagonal(w: np.ndarray, groups: int) -> np.ndarray:
    """A grouped conv's weights (O, I/groups, KH, KW) as a dense conv's (O, I, KH, KW), zero
    outside each group's block."""
    if groups == 1:
        return w
    o, ig, kh, kw = w.shape
    og = o // groups
    dense = np.zeros((o, ig * groups, kh, kw), dtype=w.dtype)
    for g in range(groups):
        dense[g * og : (g + 1) * og, g * ig : (g + 1) * ig] = w[g * og : (g + 1) * og]
    return dense


def pack_dense_weight(w: np.ndarray, lanes: int) -> np.ndarray:
    """OIHW -> (OCB, ICB, KH, KW, x_in, x_out), both channel axes padded with zeros."""
    w = _pad_axis(_pad_axis(w, 0, lanes), 1, lanes)
    o, i, kh, kw = w.shape
    return np.ascontiguousarray(w.reshape(o // lanes, lanes, i // lanes, lanes, kh, kw).transpose(0, 2, 4, 5, 3, 1))


def pack_stem_weight(w: np.ndarray, lanes: int) -> np.ndarray:
    """OIHW -> (OCB, I, KH, KW, x_out), output channels padded with zeros."""
    w = _pad_axis(w, 0, lanes)
    o, i, kh, kw = w.shape
    return np.ascontiguousarray(w.reshape(o // lanes, lanes, i, kh, kw).transpose(0, 2, 3, 4, 1))


def pack_depthwise_weight(w: np.ndarray, lanes: int) -> np.ndarray:
    """(C, 1, KH, KW) -> (CB, KH, KW, x), channels padded with zeros."""
    w = _pad_axis(w[:, 0], 0, lanes)
    c, kh, kw = w.shape
    return np.ascontiguousarray(w.reshape(c // lanes, lanes, kh, kw).transpose(0, 2, 3, 1))


def pack_channel_constant(a: np.ndarray, channels: int, lanes: int) -> np.ndarray | None:
    """A constant that broadcasts over an NCHW tensor of ``channels`` channels, as one that
    broadcasts over its NCHW[x]c form (padded with zeros); None when it does not broadcast so."""
    shape = (1,) * (4 - a.ndim) + a.shape if a.ndim <= 4 else None
    if shape is None or shape[0] != 1 or shape[2:] != (1, 1) or shape[1] not in (1, channels):
        return None
    if shape[1] == 1:
        return a.reshape(())
    per_channel = _pad_axis(a.reshape(channels), 0, lanes)
    return per_channel.reshape(1, -1, 1, 1, lanes)
