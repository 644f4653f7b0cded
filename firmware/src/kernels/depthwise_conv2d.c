/* DEPTHWISE_CONV_2D, int8 with per-channel requantisation
   (TFLite reference_integer_ops::DepthwiseConvPerChannel). */
#include <string.h>

#include "common.h"
#include "dsp.h"
#include "kernels.h"

void k_depthwise_conv2d_ref(const k_conv_t *p, const int8_t *in, int8_t *out)
{
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            const int32_t y0 = oy * p->stride_h - p->pad_h, x0 = ox * p->stride_w - p->pad_w;
            for (int32_t ic = 0; ic < p->in_c; ++ic) {
                for (int32_t m = 0; m < p->depth_mult; ++m) {
                    const int32_t oc = m + ic * p->depth_mult;
                    int32_t acc = 0;
                    for (int32_t ky = 0; ky < p->k_h; ++ky) {
                        const int32_t iy = y0 + ky * p->dil_h;
                        for (int32_t kx = 0; kx < p->k_w; ++kx) {
                            const int32_t ix = x0 + kx * p->dil_w;
                            if (iy < 0 || iy >= p->in_h || ix < 0 || ix >= p->in_w) continue;
                            const int32_t x = in[(iy * p->in_w + ix) * p->in_c + ic];
                            acc += p->filter[(ky * p->k_w + kx) * p->out_c + oc] * (x + p->in_offset);
                        }
                    }
                    if (p->bias) acc += p->bias[oc];
                    out[(oy * p->out_w + ox) * p->out_c + oc] =
                        k_requant_ref(acc, p->mult[oc], p->shift[oc], p->out_offset, p->act_min, p->act_max);
                }
            }
        }
    }
}

#ifndef KERNELS_REFERENCE
/* The optimised form (depth multiplier 1): channels inner, four at a time, SMLABB/SMLATT on
   sign-extended pairs. Once per call, into scratch: the input offset folded into the bias
   (sum(w * (x + off)) = sum(w * x) + off * sum(w)); the weights as int16 pairs in the order the
   loop reads them (group of four channels, then tap: [w0 w2][w1 w3]); a row of input zero points,
   which taps in the padding read, cancelling their part of off * sum(w). */
static K_NOINLINE void dw_group(const int8_t *const *tap, int32_t taps, int32_t c, const uint32_t *w,
                                int32_t acc[4])
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    for (; taps > 0; --taps) {
        const uint32_t x = dsp_ld32(*tap++ + c);
        uint32_t w02, w13;
        dsp_ld64_inc(&w, &w02, &w13);
        const uint32_t x02 = dsp_sxtb16(x), x13 = dsp_sxtb16_ror8(x);
        a0 = dsp_smlabb(x02, w02, a0);
        a2 = dsp_smlatt(x02, w02, a2);
        a1 = dsp_smlabb(x13, w13, a1);
        a3 = dsp_smlatt(x13, w13, a3);
    }
    acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;
}

static void depthwise_opt(const k_conv_t *p, const int8_t *in, int8_t *out, void *scratch)
{
    const int32_t C = p->in_c, C4 = (C + 3) & ~3, G = C >> 2, taps = p->k_h * p->k_w;
    const k_rq_t rq = {p->mult, p->shift, p->out_offset, p->act_min, p->act_max, p->fast_requant};
    int32_t *bias = (int32_t *)scratch;
    int16_t *weights = (int16_t *)(void *)(bias + C4);
    int8_t *zero_points = (int8_t *)(weights + 2 * taps * C4);
    const int8_t *tap[taps];
    for (int32_t c = 0; c < C; ++c) {
        int32_t sum = 0;
        for (int32_t t = 0; t < taps; ++t) sum += p->filter[t * C + c];
        bias[c] = (p->bias ? p->bias[c] : 0) + p->in_offset * sum;
    }
    for (int32_t g = 0; g < G; ++g)
        for (int32_t t = 0; t < taps; ++t) {
            const uint32_t v = dsp_ld32(p->filter + t * C + 4 * g);
            dsp_st32(weights + 4 * (g * taps + t), dsp_sxtb16(v));
            dsp_st32(weights + 4 * (g * taps + t) + 2, dsp_sxtb16_ror8(v));
        }
    memset(zero_points, -p->in_offset, (size_t)C);
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        for (int32_t ox = 0; ox < p->out_w; ++ox, out += C) {
            const int32_t y0 = oy * p->stride_h - p->pad_h, x0 = ox * p->stride_w - p->pad_w;
            for (int32_t ky = 0, t = 0; ky < p->k_h; ++ky) {
                const int32_t iy = y0 + ky * p->dil_h;
                for (int32_t kx = 0; kx < p->k_w; ++kx, ++t) {
                    const int32_t ix = x0 + kx * p->dil_w;
                    const int inside = iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w;
                    tap[t] = inside ? in + (iy * p->in_w + ix) * C : zero_points;
                }
            }
            for (int32_t g = 0; g < G; ++g) {
                const int32_t c = 4 * g;
                int32_t acc[4] = {bias[c], bias[c + 1], bias[c + 2], bias[c + 3]};
                dw_group(tap, taps, c, (const uint32_t *)(const void *)(weights + 4 * g * taps), acc);
                out[c] = k_rq(rq, acc[0], c);
                out[c + 1] = k_rq(rq, acc[1], c + 1);
                out[c + 2] = k_rq(rq, acc[2], c + 2);
                out[c + 3] = k_rq(rq, acc[3], c + 3);
            }
            for (int32_t c = 4 * G; c < C; ++c) {
                int32_t acc = bias[c];
                for (int32_t t = 0; t < taps; ++t) acc += p->filter[t * C + c] * tap[t][c];
                out[c] = k_rq(rq, acc, c);
            }
        }
    }
}
#endif

void k_depthwise_conv2d(const k_conv_t *p, const int8_t *in, int8_t *out, void *scratch)
{
#ifndef KERNELS_REFERENCE
    if (p->depth_mult == 1) {
        depthwise_opt(p, in, out, scratch);
        return;
    }
#endif
    (void)scratch;
    k_depthwise_conv2d_ref(p, in, out);
}
