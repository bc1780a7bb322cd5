"""Q4_K quantizer in numpy (the installed `gguf` package can only dequantize Q4_K).

ggml's block_q4_K covers 256 weights in 144 bytes:
    d     f16   super-block scale of the sub-block scales
    dmin  f16   super-block scale of the sub-block mins
    scales[12]  eight 6-bit scales and eight 6-bit mins, packed as ggml's
                get_scale_min_k4() reads them (see _pack_scales)
    qs[128]     4-bit quants: byte l of the 32-byte group g holds weight 64g+l in
                its low nibble and weight 64g+32+l in its high nibble
A weight of sub-block j (32 weights) decodes as d*sc[j]*q - dmin*m[j].

The quantization itself is a plain min/max fit per sub-block (not llama.cpp's
iterative search): the goldens only need valid bytes, and their reference logits
always come from gguf.quants.dequantize of the bytes written.
"""

from __future__ import annotations

import numpy as np

QK_K = 256            # weights per super-block
BLOCK_BYTES = 144     # 2 + 2 + 12 + 128


def _pack_scales(ls: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """Pack 6-bit scales `ls` and mins `lm` (n, 8) into ggml's 12-byte layout (n, 12)."""
    n = ls.shape[0]
    out = np.zeros((n, 12), dtype=np.uint8)
    ls = ls.astype(np.uint8)
    lm = lm.astype(np.uint8)
    # Sub-blocks 0..3: low 6 bits of bytes 0..3 (scales) and 4..7 (mins).
    out[:, 0:4] = ls[:, 0:4]
    out[:, 4:8] = lm[:, 0:4]
    # Sub-blocks 4..7: low 4 bits in bytes 8..11 (scale low nibble, min high
    # nibble); their top 2 bits go into the top 2 bits of bytes 0..3 / 4..7.
    out[:, 8:12] = (ls[:, 4:8] & 0x0F) | ((lm[:, 4:8] & 0x0F) << 4)
    out[:, 0:4] |= (ls[:, 4:8] >> 4) << 6
    out[:, 4:8] |= (lm[:, 4:8] >> 4) << 6
    return out


def quantize_q4_k(x: np.ndarray) -> np.ndarray:
    """Quantize float32 rows (..., n) with n % 256 == 0 to Q4_K bytes (..., n/256*144)."""
    x = np.asarray(x, dtype=np.float32)
    if x.shape[-1] % QK_K != 0:
        raise ValueError(f"Q4_K needs rows that are a multiple of {QK_K}, got {x.shape[-1]}")
    lead = x.shape[:-1]
    blocks = x.reshape(-1, 8, 32)                     # (nb, sub-block, weight)
    nb = blocks.shape[0]

    # Per sub-block affine fit x ~= s*q - m with q in 0..15 and m >= 0.
    lo = np.minimum(blocks.min(axis=2), 0.0)
    hi = blocks.max(axis=2)
    s = (hi - lo) / 15.0
    m = -lo

    # Super-block scales, rounded to f16 first because that is what is stored.
    d = (s.max(axis=1) / 63.0).astype(np.float16)
    dmin = (m.max(axis=1) / 63.0).astype(np.float16)
    d32 = d.astype(np.float32)[:, None]
    dmin32 = dmin.astype(np.float32)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        ls = np.where(d32 > 0, np.rint(s / d32), 0.0)
        lm = np.where(dmin32 > 0, np.rint(m / dmin32), 0.0)
    ls = np.clip(ls, 0, 63)
    lm = np.clip(lm, 0, 63)

    # The 4-bit quants against the scales that decoding will actually use.
    eff_s = (d32 * ls)[:, :, None]
    eff_m = (dmin32 * lm)[:, :, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(eff_s > 0, np.rint((blocks + eff_m) / eff_s), 0.0)
    q = np.clip(q, 0, 15).astype(np.uint8)            # (nb, 8, 32)

    # Sub-blocks 2g and 2g+1 share the 32 bytes of group g (low / high nibble).
    qs = (q[:, 0::2, :] | (q[:, 1::2, :] << 4)).reshape(nb, 128)

    out = np.empty((nb, BLOCK_BYTES), dtype=np.uint8)
    out[:, 0:2] = d.reshape(nb, 1).view(np.uint8)
    out[:, 2:4] = dmin.reshape(nb, 1).view(np.uint8)
    out[:, 4:16] = _pack_scales(ls, lm)
    out[:, 16:144] = qs
    return out.reshape(*lead, x.shape[-1] // QK_K * BLOCK_BYTES)


def self_test() -> None:
    """Round-trip random rows through gguf's own Q4_K decoder; raise on mismatch."""
    import gguf.quants
    from gguf import GGMLQuantizationType

    rng = np.random.default_rng(1234)
    x = rng.normal(0.0, 0.1, size=(16, 512)).astype(np.float32)
    x[3] = np.abs(x[3])        # a row with no negative weights (min fit of 0)
    x[5] = 0.0                 # an all-zero row (zero scales)
    x[7, :256] *= 50.0         # very different ranges in the two super-blocks
    b = quantize_q4_k(x)
    assert b.shape == (16, 2 * BLOCK_BYTES)
    y = gguf.quants.dequantize(b, GGMLQuantizationType.Q4_K)
    assert y.shape == x.shape
    # Error bound of the fit: half a quant step plus 6-bit rounding of the scale.
    blocks = x.reshape(-1, 8, 32)
    step = (blocks.max(axis=2) - np.minimum(blocks.min(axis=2), 0)) / 15.0
    err = np.abs(y - x).reshape(-1, 8, 32).max(axis=2)
    assert np.all(err <= step * 0.5 + np.abs(x).reshape(-1, 8, 32).max(axis=2) * 0.05 + 1e-7), \
        float((err - step * 0.5).max())
    assert np.all(y[5] == 0.0)
    # An independent decoder written from the layout description above.
    z = _reference_decode(b)
    assert np.array_equal(z, y), np.abs(z - y).max()


def _reference_decode(b: np.ndarray) -> np.ndarray:
    """Scalar decoder of Q4_K bytes, following ggml's get_scale_min_k4 layout."""
    rows = []
    for row in b.reshape(b.shape[0], -1, BLOCK_BYTES):
        vals = []
        for blk in row:
            d = float(blk[0:2].view(np.float16)[0])
            dmin = float(blk[2:4].view(np.float16)[0])
            sc = blk[4:16]
            qs = blk[16:144]
            for j in range(8):
                if j < 4:
                    s, m = sc[j] & 63, sc[j + 4] & 63
                else:
                    s = (sc[j + 4] & 0x0F) | ((sc[j - 4] >> 6) << 4)
                    m = (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4)
                g = qs[32 * (j // 2): 32 * (j // 2) + 32]
                q = (g & 0x0F) if j % 2 == 0 else (g >> 4)
                vals.append(np.float32(d * s) * q.astype(np.float32) - np.float32(dmin * m))
        rows.append(np.concatenate(vals))
    return np.stack(rows).astype(np.float32)


if __name__ == "__main__":
    self_test()
    print("q4k self-test ok")
