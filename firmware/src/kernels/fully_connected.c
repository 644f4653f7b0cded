/* FULLY_CONNECTED, int8 with one requantisation multiplier (TFLite reference_integer_ops). */
#include "common.h"
#include "dsp.h"
#include "kernels.h"

void k_fully_connected_ref(const k_fc_t *p, const int8_t *in, int8_t *out)
{
    for (int32_t b = 0; b < p->batches; ++b, in += p->in_size) {
        for (int32_t o = 0; o < p->out_size; ++o) {
            const int8_t *w = p->weights + o * p->in_size;
            int32_t acc = 0;
            for (int32_t d = 0; d < p->in_size; ++d) acc += w[d] * (in[d] + p->in_offset);
            if (p->bias) acc += p->bias[o];
            *out++ = k_requant_ref(acc, p->mult, p->shift, p->out_offset, p->act_min, p->act_max);
        }
    }
}

#ifndef KERNELS_REFERENCE
/* The input as int16 (x + offset), each group of four stored in 0,2,1,3 order to match the
   SXTB16 / SXTB16-ROR8 halves of a weight word; the K % 4 tail in order. */
static void pack_input(const int8_t *x, int32_t K, int32_t offset, int16_t *col)
{
    const uint32_t off2 = dsp_dup16(offset);
    int32_t k = 0;
    for (; k + 4 <= K; k += 4) {
        const uint32_t w = dsp_ld32(x + k);
        dsp_st32(col + k, dsp_sadd16(dsp_sxtb16(w), off2));
        dsp_st32(col + k + 2, dsp_sadd16(dsp_sxtb16_ror8(w), off2));
    }
    for (; k < K; ++k) col[k] = (int16_t)(x[k] + offset);
}

/* acc[0..1] += (row0 . x, row1 . x) over the K/4 whole groups of the packed input */
static K_NOINLINE void mac_1x2(const int8_t *w0, const int8_t *w1, const int16_t *x, int32_t groups,
                               int32_t acc[2])
{
    int32_t a0 = acc[0], a1 = acc[1];
    const int16_t *end = x + 4 * groups;
    while (x != end) {
        const uint32_t x02 = dsp_ld32(x), x13 = dsp_ld32(x + 2);
        x += 4;
        uint32_t w = dsp_ld32(w0);
        w0 += 4;
        a0 = dsp_smlad(dsp_sxtb16(w), x02, a0);
        a0 = dsp_smlad(dsp_sxtb16_ror8(w), x13, a0);
        w = dsp_ld32(w1);
        w1 += 4;
        a1 = dsp_smlad(dsp_sxtb16(w), x02, a1);
        a1 = dsp_smlad(dsp_sxtb16_ror8(w), x13, a1);
    }
    acc[0] = a0, acc[1] = a1;
}

static void fully_connected_opt(const k_fc_t *p, const int8_t *in, int8_t *out, void *scratch)
{
    const int32_t K = p->in_size, N = p->out_size, K4 = K & ~3;
    const int32_t mult = p->mult, shift = p->shift, fast = p->fast_requant;
    const int32_t out_offset = p->out_offset, act_min = p->act_min, act_max = p->act_max;
    int16_t *col = (int16_t *)scratch;
    for (int32_t b = 0; b < p->batches; ++b, in += K, out += N) {
        pack_input(in, K, p->in_offset, col);
        for (int32_t o = 0; o < N; o += 2) {
            const int32_t o1 = o + 1 < N ? o + 1 : o; /* an odd last row is computed twice */
            const int8_t *w0 = p->weights + o * K, *w1 = p->weights + o1 * K;
            int32_t acc[2] = {p->bias ? p->bias[o] : 0, p->bias ? p->bias[o1] : 0};
            mac_1x2(w0, w1, col, K4 >> 2, acc);
            for (int32_t k = K4; k < K; ++k) {
                acc[0] += w0[k] * col[k];
                acc[1] += w1[k] * col[k];
            }
            for (int i = 0; i < 2; ++i) {
                const int32_t v = fast ? fp_mbqm_bounded(acc[i], mult, -shift) : fp_mbqm_fast(acc[i], mult, shift);
                out[i ? o1 : o] = (int8_t)k_clamp(v + out_offset, act_min, act_max);
            }
        }
    }
}
#endif

void k_fully_connected(const k_fc_t *p, const int8_t *in, int8_t *out, void *scratch)
{
#ifdef KERNELS_REFERENCE
    (void)scratch;
    k_fully_connected_ref(p, in, out);
#else
    fully_connected_opt(p, in, out, scratch);
#endif
}
