/* The Cortex-M4/M7 DSP instructions the optimised kernels use, as inline functions: the real
   instruction where the target has it (__ARM_FEATURE_DSP), an exact C emulation elsewhere, so the
   host build runs the very same kernel code paths. Packed values hold two int16 lanes: bits 0..15
   ("bottom") and 16..31 ("top"). */
#ifndef KERNELS_DSP_H
#define KERNELS_DSP_H

#include <stdint.h>
#include <string.h>

/* A 32-bit load from any alignment (one LDR on v7-M, which allows unaligned word loads). */
static inline uint32_t dsp_ld32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void dsp_st32(void *p, uint32_t v) { memcpy(p, &v, sizeof v); }

#if defined(__ARM_FEATURE_DSP) && !defined(DSP_EMULATE)

/* bytes 0 and 2 of x, sign-extended to the two lanes */
static inline uint32_t dsp_sxtb16(uint32_t x)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1" : "=r"(r) : "r"(x));
    return r;
}

/* bytes 1 and 3 of x, sign-extended to the two lanes */
static inline uint32_t dsp_sxtb16_ror8(uint32_t x)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

/* lane-wise 16-bit add (wrapping) */
static inline uint32_t dsp_sadd16(uint32_t a, uint32_t b)
{
    uint32_t r;
    __asm__("sadd16 %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

/* acc + bottom(x)*bottom(y) + top(x)*top(y) */
static inline int32_t dsp_smlad(uint32_t x, uint32_t y, int32_t acc)
{
    int32_t r;
    __asm__("smlad %0, %1, %2, %3" : "=r"(r) : "r"(x), "r"(y), "r"(acc));
    return r;
}

/* acc + bottom(x)*bottom(y) */
static inline int32_t dsp_smlabb(uint32_t x, uint32_t y, int32_t acc)
{
    int32_t r;
    __asm__("smlabb %0, %1, %2, %3" : "=r"(r) : "r"(x), "r"(y), "r"(acc));
    return r;
}

/* acc + top(x)*top(y) */
static inline int32_t dsp_smlatt(uint32_t x, uint32_t y, int32_t acc)
{
    int32_t r;
    __asm__("smlatt %0, %1, %2, %3" : "=r"(r) : "r"(x), "r"(y), "r"(acc));
    return r;
}

/* (x * y + 2^31) >> 32: the high word of the product, rounded */
static inline int32_t dsp_smmulr(int32_t x, int32_t y)
{
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(x), "r"(y));
    return r;
}

/* two words from a 4-byte aligned *p (one LDRD), then p += 2 */
static inline void dsp_ld64_inc(const uint32_t **p, uint32_t *lo, uint32_t *hi)
{
    __asm__("ldrd %0, %1, [%2], #8" : "=r"(*lo), "=r"(*hi), "+r"(*p) : "m"(*(const uint32_t(*)[2]) * p));
}

#else /* exact C emulation */

static inline int32_t dsp_lo(uint32_t x) { return (int32_t)(int16_t)(uint16_t)(x & 0xffffu); }
static inline int32_t dsp_hi(uint32_t x) { return (int32_t)(int16_t)(uint16_t)(x >> 16); }
static inline uint32_t dsp_pack(int32_t lo, int32_t hi)
{
    return ((uint32_t)lo & 0xffffu) | (((uint32_t)hi & 0xffffu) << 16);
}

static inline uint32_t dsp_sxtb16(uint32_t x)
{
    return dsp_pack((int8_t)(uint8_t)(x & 0xffu), (int8_t)(uint8_t)((x >> 16) & 0xffu));
}

static inline uint32_t dsp_sxtb16_ror8(uint32_t x) { return dsp_sxtb16((x >> 8) | (x << 24)); }

static inline uint32_t dsp_sadd16(uint32_t a, uint32_t b)
{
    return dsp_pack(dsp_lo(a) + dsp_lo(b), dsp_hi(a) + dsp_hi(b));
}

/* SMLAD's sum wraps modulo 2^32 (it only sets the Q flag): add in uint32. */
static inline int32_t dsp_smlad(uint32_t x, uint32_t y, int32_t acc)
{
    uint32_t s = (uint32_t)acc + (uint32_t)(dsp_lo(x) * dsp_lo(y)) + (uint32_t)(dsp_hi(x) * dsp_hi(y));
    return (int32_t)s;
}

static inline int32_t dsp_smlabb(uint32_t x, uint32_t y, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(dsp_lo(x) * dsp_lo(y)));
}

static inline int32_t dsp_smlatt(uint32_t x, uint32_t y, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(dsp_hi(x) * dsp_hi(y)));
}

static inline int32_t dsp_smmulr(int32_t x, int32_t y)
{
    return (int32_t)(((int64_t)x * (int64_t)y + ((int64_t)1 << 31)) >> 32);
}

static inline void dsp_ld64_inc(const uint32_t **p, uint32_t *lo, uint32_t *hi)
{
    memcpy(lo, *p, sizeof *lo);
    memcpy(hi, *p + 1, sizeof *hi);
    *p += 2;
}

#endif

/* the same int16 value in both lanes */
static inline uint32_t dsp_dup16(int32_t v) { return ((uint32_t)v & 0xffffu) * 0x00010001u; }

#endif /* KERNELS_DSP_H */
