/* CONV_2D, int8 with per-channel requantisation (TFLite reference_integer_ops::ConvPerChannel). */
#include "common.h"
#include "dsp.h"
#include "kernels.h"

void k_conv2d_ref(const k_conv_t *p, const int8_t *in, int8_t *out)
{
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            const int32_t y0 = oy * p->stride_h - p->pad_h, x0 = ox * p->stride_w - p->pad_w;
            for (int32_t oc = 0; oc < p->out_c; ++oc) {
                int32_t acc = 0;
                for (int32_t ky = 0; ky < p->k_h; ++ky) {
                    const int32_t iy = y0 + ky * p->dil_h;
                    for (int32_t kx = 0; kx < p->k_w; ++kx) {
                        const int32_t ix = x0 + kx * p->dil_w;
                        if (iy < 0 || iy >= p->in_h || ix < 0 || ix >= p->in_w) continue; /* zero padding */
                        const int8_t *x = in + (iy * p->in_w + ix) * p->in_c;
                        const int8_t *w = p->filter + ((oc * p->k_h + ky) * p->k_w + kx) * p->in_c;
                        for (int32_t ic = 0; ic < p->in_c; ++ic) acc += w[ic] * (x[ic] + p->in_offset);
                    }
                }
                if (p->bias) acc += p->bias[oc];
                *out++ = k_requant_ref(acc, p->mult[oc], p->shift[oc], p->out_offset, p->act_min, p->act_max);
            }
        }
    }
}

#ifndef KERNELS_REFERENCE
/* The optimised form: output pixels in pairs, each turned into an int16 im2col column (input +
   offset; 0 in the padding), then every output channel pair as a 2x2 block of dot products with
   SMLAD, so each weight word and each column word is loaded once per block.

   Column layout, for SMLAD against SXTB16 (bytes 0, 2) and SXTB16-ROR8 (bytes 1, 3) of a weight
   word: per group of four k, the words [a0 a2][a1 a3][b0 b2][b1 b3] of pixels a and b (int16
   lanes); after the K/4 groups, the K%4 tail of a, then of b, in order. */
static inline int16_t *col_slot(int16_t *col, int32_t k, int32_t K4, int32_t tail, int32_t pixel)
{
    if (k >= K4) return col + 2 * K4 + pixel * tail + (k - K4);
    const int32_t j = k & 3; /* 0, 1, 2, 3 -> lanes 0, 2, 1, 3 */
    return col + 2 * (k & ~3) + 4 * pixel + ((j & 1) << 1) + ((j & 2) >> 1);
}

static void im2col(const k_conv_t *p, const int8_t *in, int32_t px, int16_t *col, int32_t pixel)
{
    const int32_t oy = px / p->out_w, ox = px % p->out_w;
    const int32_t y0 = oy * p->stride_h - p->pad_h, x0 = ox * p->stride_w - p->pad_w;
    const int32_t C = p->in_c, K = p->k_h * p->k_w * C, K4 = K & ~3, tail = K & 3;
    const uint32_t off2 = dsp_dup16(p->in_offset);
    int32_t k = 0;
    for (int32_t ky = 0; ky < p->k_h; ++ky) {
        const int32_t iy = y0 + ky * p->dil_h;
        for (int32_t kx = 0; kx < p->k_w; ++kx) {
            const int32_t ix = x0 + kx * p->dil_w;
            const int inside = iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w;
            const int8_t *x = inside ? in + (iy * p->in_w + ix) * C : in;
            int32_t c = 0;
            if ((k & 3) == 0) /* whole groups: two SXTB16 and two SADD16 per four channels */
                for (; c + 4 <= C && k + 4 <= K4; c += 4, k += 4) {
                    int16_t *w = col + 2 * k + 4 * pixel;
                    const uint32_t v = inside ? dsp_ld32(x + c) : 0;
                    dsp_st32(w, inside ? dsp_sadd16(dsp_sxtb16(v), off2) : 0);
                    dsp_st32(w + 2, inside ? dsp_sadd16(dsp_sxtb16_ror8(v), off2) : 0);
                }
            for (; c < C; ++c, ++k) *col_slot(col, k, K4, tail, pixel) = inside ? (int16_t)(x[c] + p->in_offset) : 0;
        }
    }
}

/* acc[0..3] += (row0 . a, row1 . a, row0 . b, row1 . b) over the K/4 whole groups */
static K_NOINLINE void mac_2x2(const int8_t *w0, const int8_t *w1, const uint32_t *col, int32_t groups,
                               int32_t acc[4])
{
    int32_t a0 = acc[0], a1 = acc[1], b0 = acc[2], b1 = acc[3];
    for (; groups > 0; --groups) {
        uint32_t xa02, xa13, xb02, xb13;
        dsp_ld64_inc(&col, &xa02, &xa13);
        dsp_ld64_inc(&col, &xb02, &xb13);
        uint32_t w = dsp_ld32(w0);
        w0 += 4;
        uint32_t w13 = dsp_sxtb16_ror8(w);
        w = dsp_sxtb16(w);
        a0 = dsp_smlad(w, xa02, a0);
        a0 = dsp_smlad(w13, xa13, a0);
        b0 = dsp_smlad(w, xb02, b0);
        b0 = dsp_smlad(w13, xb13, b0);
        w = dsp_ld32(w1);
        w1 += 4;
        w13 = dsp_sxtb16_ror8(w);
        w = dsp_sxtb16(w);
        a1 = dsp_smlad(w, xa02, a1);
        a1 = dsp_smlad(w13, xa13, a1);
        b1 = dsp_smlad(w, xb02, b1);
        b1 = dsp_smlad(w13, xb13, b1);
    }
    acc[0] = a0, acc[1] = a1, acc[2] = b0, acc[3] = b1;
}

static void conv2d_opt(const k_conv_t *p, const int8_t *in, int8_t *out, void *scratch)
{
    const int32_t K = p->k_h * p->k_w * p->in_c, K4 = K & ~3, tail = K & 3;
    const int32_t pixels = p->out_h * p->out_w, C = p->out_c;
    const k_rq_t rq = {p->mult, p->shift, p->out_offset, p->act_min, p->act_max, p->fast_requant};
    const int8_t *filter = p->filter;
    const int32_t *bias = p->bias;
    int16_t *col = (int16_t *)scratch;
    const int16_t *tail_a = col + 2 * K4, *tail_b = tail_a + tail;
    for (int32_t px = 0; px < pixels; px += 2) {
        const int two = px + 1 < pixels; /* an odd last pixel is computed twice, stored once */
        im2col(p, in, px, col, 0);
        im2col(p, in, two ? px + 1 : px, col, 1);
        int8_t *out_a = out + px * C, *out_b = out_a + C;
        for (int32_t oc = 0; oc < C; oc += 2) {
            const int32_t oc1 = oc + 1 < C ? oc + 1 : oc; /* an odd last channel: the same trick */
            const int8_t *w0 = filter + oc * K, *w1 = filter + oc1 * K;
            const int32_t b0 = bias ? bias[oc] : 0, b1 = bias ? bias[oc1] : 0;
            int32_t acc[4] = {b0, b1, b0, b1};
            mac_2x2(w0, w1, (const uint32_t *)scratch, K4 >> 2, acc);
            for (int32_t j = 0; j < tail; ++j) {
                acc[0] += w0[K4 + j] * tail_a[j];
                acc[1] += w1[K4 + j] * tail_a[j];
                acc[2] += w0[K4 + j] * tail_b[j];
                acc[3] += w1[K4 + j] * tail_b[j];
            }
            /* every constant loaded before the first store (an int8 store may alias them) */
            const int32_t m0 = rq.mult[oc], m1 = rq.mult[oc1], s0 = rq.shift[oc], s1 = rq.shift[oc1];
            const int8_t ya0 = k_rq_with(rq, acc[0], m0, s0), ya1 = k_rq_with(rq, acc[1], m1, s1);
            const int8_t yb0 = k_rq_with(rq, acc[2], m0, s0), yb1 = k_rq_with(rq, acc[3], m1, s1);
            out_a[oc] = ya0;
            out_a[oc1] = ya1;
            if (two) {
                out_b[oc] = yb0;
                out_b[oc1] = yb1;
            }
        }
    }
}
#endif

void k_conv2d(const k_conv_t *p, const int8_t *in, int8_t *out, void *scratch)
{
#ifdef KERNELS_REFERENCE
    (void)scratch;
    k_conv2d_ref(p, in, out);
#else
    conv2d_opt(p, in, out, scratch);
#endif
}
