/* TFLite's integer requantisation arithmetic, bit for bit (reference_ops / gemmlowp semantics).
   Portable C99: the host build and the Cortex-M build compute the same values. */
#ifndef KERNELS_FIXEDPOINT_H
#define KERNELS_FIXEDPOINT_H

#include <stdint.h>

/* a * b / 2^31 rounded to nearest with TFLite's int64 nudge (2^30, or 1 - 2^30 for a negative
   product) and truncating division: ties go toward +infinity. The one case that overflows
   (INT32_MIN * INT32_MIN) saturates. */
static inline int32_t fp_srdhm(int32_t a, int32_t b)
{
    if (a == b && a == INT32_MIN) return INT32_MAX;
    int64_t ab = (int64_t)a * (int64_t)b;
    int64_t nudge = ab >= 0 ? (int64_t)(1 << 30) : (int64_t)(1 - (1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31)); /* C division truncates toward zero */
}

/* x / 2^e rounded to nearest, halves away from zero; e in 0..31. */
static inline int32_t fp_rdbpot(int32_t x, int e)
{
    const int32_t mask = (int32_t)(((int64_t)1 << e) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> e) + (remainder > threshold ? 1 : 0);
}

/* MultiplyByQuantizedMultiplier: x * m * 2^shift with m a Q31 value in [0.5, 1). The left shift
   wraps like the int32 multiply TFLite compiles to. */
static inline int32_t fp_mbqm(int32_t x, int32_t m, int shift)
{
    const int left = shift > 0 ? shift : 0;
    const int right = shift > 0 ? 0 : -shift;
    return fp_rdbpot(fp_srdhm((int32_t)((uint32_t)x << left), m), right);
}

/* fp_srdhm for b >= 0 (every multiplier the compiler emits): no saturation case, and
   floor((ab + 2^30) / 2^31) equals the truncating division with the sign-dependent nudge. */
static inline int32_t fp_srdhm_pos(int32_t a, int32_t b)
{
    return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 30)) >> 31);
}

/* fp_rdbpot for e >= 1 without a mask constant per call: rounds up when the remainder, less one
   for negative x, reaches half. */
static inline int32_t fp_rdbpot_pos(int32_t x, int e)
{
    const int32_t remainder = (int32_t)((uint32_t)x & (((uint32_t)1 << e) - 1u));
    const int32_t r = remainder - (int32_t)((uint32_t)x >> 31);
    return (x >> e) + (r >= (int32_t)(1u << (e - 1)) ? 1 : 0);
}

/* fp_mbqm with m >= 0, equal to it for every input. */
static inline int32_t fp_mbqm_fast(int32_t x, int32_t m, int shift)
{
    if (shift > 0) return fp_srdhm_pos((int32_t)((uint32_t)x << shift), m);
    if (shift == 0) return fp_srdhm_pos(x, m);
    return fp_rdbpot_pos(fp_srdhm_pos(x, m), -shift);
}

#endif /* KERNELS_FIXEDPOINT_H */
