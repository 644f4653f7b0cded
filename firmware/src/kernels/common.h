/* Helpers shared by the kernel sources (not part of the kernel API). */
#ifndef KERNELS_COMMON_H
#define KERNELS_COMMON_H

#include <stdint.h>

#include "dsp.h"
#include "fixedpoint.h"

#if defined(__GNUC__)
#define K_NOINLINE __attribute__((noinline)) /* keeps an inner loop's registers to itself */
#else
#define K_NOINLINE
#endif

static inline int32_t k_clamp(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* accumulator -> int8 output: requantise, add the output zero point, clamp to the activation */
static inline int8_t k_requant_ref(int32_t acc, int32_t mult, int shift, int32_t out_offset,
                                   int32_t act_min, int32_t act_max)
{
    return (int8_t)k_clamp(fp_mbqm(acc, mult, shift) + out_offset, act_min, act_max);
}

/* fp_mbqm when |acc| < 2^30 and shift = -e <= -1, which the compiler proves per operator
   (fast_requant): 2 * acc fits, so SMMULR(2 * acc, m) = floor((acc * m + 2^30) / 2^31) is
   fp_srdhm; and |s| < 2^30, so (s + 2^(e-1) - (s < 0)) >> e, which is fp_rdbpot, cannot overflow. */
static inline int32_t fp_mbqm_bounded(int32_t acc, int32_t m, int e)
{
    const int32_t s = dsp_smmulr((int32_t)((uint32_t)acc << 1), m);
    return (s + (1 << (e - 1)) + (s >> 31)) >> e;
}

/* Per-operator output constants held in locals: an int8 store may alias anything, so reading them
   through the parameter pointer would reload them after every output byte. */
typedef struct {
    const int32_t *mult;
    const int8_t *shift;
    int32_t out_offset, act_min, act_max, fast;
} k_rq_t;

/* one output byte from an accumulator, with the channel's multiplier and shift already loaded */
static inline int8_t k_rq_with(k_rq_t rq, int32_t acc, int32_t mult, int32_t shift)
{
    const int32_t v = rq.fast ? fp_mbqm_bounded(acc, mult, -shift) : fp_mbqm_fast(acc, mult, shift);
    return (int8_t)k_clamp(v + rq.out_offset, rq.act_min, rq.act_max);
}

static inline int8_t k_rq(k_rq_t rq, int32_t acc, int32_t c)
{
    return k_rq_with(rq, acc, rq.mult[c], rq.shift[c]);
}

#endif /* KERNELS_COMMON_H */
