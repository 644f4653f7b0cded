/* ADD of two int8 tensors of the same shape (TFLite reference_integer_ops::Add): both inputs are
   shifted left by left_shift (20), rescaled to a common scale, summed and requantised. */
#include "common.h"
#include "kernels.h"

static void add_ref(const k_add_t *p, const int8_t *in1, const int8_t *in2, int8_t *out)
{
    for (int32_t i = 0; i < p->size; ++i) {
        const int32_t a = (int32_t)((uint32_t)(in1[i] + p->in1_offset) << p->left_shift);
        const int32_t b = (int32_t)((uint32_t)(in2[i] + p->in2_offset) << p->left_shift);
        const int32_t sum = fp_mbqm(a, p->in1_mult, p->in1_shift) + fp_mbqm(b, p->in2_mult, p->in2_shift);
        const int32_t y = fp_mbqm(sum, p->out_mult, p->out_shift) + p->out_offset;
        out[i] = (int8_t)k_clamp(y, p->act_min, p->act_max);
    }
}

#ifndef KERNELS_REFERENCE
/* fp_mbqm for |x| < 2^30 and shift <= 0: the shifted inputs are below 256 * 2^20 and their
   rescaled sum below 2^29, and the compiler refuses shifts > 0 (as TFLite does). */
static inline int32_t mbqm_small(int32_t x, int32_t m, int32_t shift)
{
    return shift == 0 ? dsp_smmulr((int32_t)((uint32_t)x << 1), m) : fp_mbqm_bounded(x, m, -shift);
}

static void add_opt(const k_add_t *p, const int8_t *in1, const int8_t *in2, int8_t *out)
{
    const int32_t n = p->size, ls = p->left_shift, off1 = p->in1_offset, off2 = p->in2_offset;
    const int32_t m1 = p->in1_mult, s1 = p->in1_shift, m2 = p->in2_mult, s2 = p->in2_shift;
    const int32_t mo = p->out_mult, so = p->out_shift, out_offset = p->out_offset;
    const int32_t lo = p->act_min, hi = p->act_max;
    for (int32_t i = 0; i < n; ++i) {
        const int32_t a = (in1[i] + off1) * (1 << ls), b = (in2[i] + off2) * (1 << ls);
        const int32_t sum = mbqm_small(a, m1, s1) + mbqm_small(b, m2, s2);
        out[i] = (int8_t)k_clamp(mbqm_small(sum, mo, so) + out_offset, lo, hi);
    }
}
#endif

void k_add(const k_add_t *p, const int8_t *in1, const int8_t *in2, int8_t *out)
{
#ifdef KERNELS_REFERENCE
    add_ref(p, in1, in2, out);
#else
    if (p->left_shift <= 20 && p->in1_shift <= 0 && p->in2_shift <= 0 && p->out_shift <= 0) {
        add_opt(p, in1, in2, out);
        return;
    }
    add_ref(p, in1, in2, out);
#endif
}
