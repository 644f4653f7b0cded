/* SOFTMAX int8 -> int8 (output scale 1/256, zero point -128), as TFLite's reference integer
   softmax computes it: differences to the row maximum, rescaled to Q5.26, exp() of them in Q0.31
   by a fixed-point polynomial and barrel shifter, summed in Q12.19, one reciprocal per row. */
#include "common.h"
#include "kernels.h"

/* x * 2^e with saturation (e > 0), the left-shift half of gemmlowp's SaturatingRoundingMultiplyByPOT */
static int32_t sat_shl(int32_t x, int e)
{
    const int32_t threshold = (int32_t)((1u << (31 - e)) - 1u);
    if (x > threshold) return INT32_MAX;
    if (x < -threshold) return INT32_MIN;
    return (int32_t)((uint32_t)x << e);
}

/* exp(a) for a in [-1/4, 0), both Q0.31: a Taylor expansion around -1/8. */
static int32_t exp_quarter(int32_t a)
{
    const int32_t exp_minus_eighth = 1895147668; /* exp(-1/8) in Q0.31 */
    const int32_t one_third = 715827883;         /* 1/3 in Q0.31 */
    const int32_t x = a + (1 << 28);              /* a + 1/8 */
    const int32_t x2 = fp_srdhm(x, x), x3 = fp_srdhm(x2, x), x4 = fp_srdhm(x2, x2);
    const int32_t x4_over_4 = fp_rdbpot(x4, 2);
    const int32_t poly = fp_rdbpot(fp_srdhm(x4_over_4 + x3, one_third) + x2, 1); /* x^4/24 + x^3/6 + x^2/2 */
    return exp_minus_eighth + fp_srdhm(exp_minus_eighth, x + poly);
}

/* exp(a) for a <= 0 in Q5.26, result in Q0.31: exp of a mod 1/4, then one factor exp(-2^k) for
   each bit k of the rest. */
static int32_t exp_negative(int32_t a)
{
    static const int32_t factors[7] = {
        1672461947, /* exp(-1/4) */
        1302514674, /* exp(-1/2) */
        790015084,  /* exp(-1) */
        290630308,  /* exp(-2) */
        39332535,   /* exp(-4) */
        720401,     /* exp(-8) */
        242,        /* exp(-16) */
    };
    const int32_t quarter = 1 << 24; /* 1/4 in Q5.26 */
    const int32_t a_mod_quarter_minus_quarter = (a & (quarter - 1)) - quarter;
    int32_t result = exp_quarter(sat_shl(a_mod_quarter_minus_quarter, 5)); /* Q5.26 -> Q0.31 */
    const int32_t remainder = a_mod_quarter_minus_quarter - a;
    for (int k = 0; k < 7; ++k)
        if (remainder & (1 << (24 + k))) result = fp_srdhm(result, factors[k]);
    return a == 0 ? INT32_MAX : result;
}

/* 1 / (1 + x) for x in [0, 1), Q0.31 in and out: Newton-Raphson in Q2.29. */
static int32_t one_over_one_plus_x(int32_t a)
{
    const int64_t sum = (int64_t)a + INT32_MAX;
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2); /* Q0.31 */
    const int32_t c48_17 = 1515870810, c_neg32_17 = -1010580540;               /* Q2.29 */
    int32_t x = c48_17 + fp_srdhm(half_denominator, c_neg32_17);
    for (int i = 0; i < 3; ++i) {
        const int32_t hdx = fp_srdhm(half_denominator, x);          /* Q2.29 */
        const int32_t one_minus = (1 << 29) - hdx;                  /* Q2.29 */
        x = x + sat_shl(fp_srdhm(x, one_minus), 2);                /* Q4.27 -> Q2.29 */
    }
    return sat_shl(x, 1); /* x / 2 read as Q1.30, to Q0.31 */
}

static int count_leading_zeros(uint32_t x)
{
    int n = 0;
    if (x == 0) return 32;
    while (!(x & 0x80000000u)) x <<= 1, ++n;
    return n;
}

void k_softmax(const k_softmax_t *p, const int8_t *in, int8_t *out)
{
    for (int32_t r = 0; r < p->rows; ++r, in += p->depth, out += p->depth) {
        int32_t max = -128;
        for (int32_t c = 0; c < p->depth; ++c)
            if (in[c] > max) max = in[c];
        int32_t sum = 0; /* Q12.19 */
        for (int32_t c = 0; c < p->depth; ++c) {
            const int32_t diff = in[c] - max;
            if (diff >= p->diff_min) {
                const int32_t scaled = fp_srdhm((int32_t)((uint32_t)diff << p->input_left_shift), p->input_multiplier);
                sum += fp_rdbpot(exp_negative(scaled), 12);
            }
        }
        /* 1 / sum as a Q0.31 value in [0.5, 1) times 2^-bits_over_unit */
        const int headroom = count_leading_zeros((uint32_t)sum);
        const int bits_over_unit = 12 - headroom;
        const int32_t shifted_minus_one = (int32_t)(((uint32_t)sum << headroom) - (1u << 31));
        const int32_t scale = one_over_one_plus_x(shifted_minus_one);
        for (int32_t c = 0; c < p->depth; ++c) {
            const int32_t diff = in[c] - max;
            int32_t y = -128;
            if (diff >= p->diff_min) {
                const int32_t scaled = fp_srdhm((int32_t)((uint32_t)diff << p->input_left_shift), p->input_multiplier);
                const int32_t prob = fp_rdbpot(fp_srdhm(scale, exp_negative(scaled)), bits_over_unit + 31 - 8);
                y = k_clamp(prob - 128, -128, 127);
            }
            out[c] = (int8_t)y;
        }
    }
}
