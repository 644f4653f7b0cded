/* Int8 kernels with TFLite's reference integer arithmetic (the values tflite-micro's reference
   kernels compute, byte for byte). Tensors are NHWC with batch 1; filters are OHWI (conv2d),
   1HWC (depthwise) and [out][in] (fully connected). Offsets follow TFLite: in_offset is minus the
   input zero point, out_offset the output zero point. Requantisation parameters (multiplier in Q31,
   shift > 0 meaning a left shift) are computed by the model compiler exactly as TFLite's
   QuantizeMultiplier does.

   Every kernel has a straightforward form and an optimised one (loop order, packed 16-bit dual
   multiply-accumulate, see dsp.h); both give identical outputs. -DKERNELS_REFERENCE selects the
   straightforward ones. Kernels that take a scratch buffer need as many bytes as its
   K_*_SCRATCH_BYTES macro gives, 4-byte aligned (LDRD); the compiler reserves them in the arena. */
#ifndef KERNELS_H
#define KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int32_t in_h, in_w, in_c, out_h, out_w, out_c;
    int32_t k_h, k_w, stride_h, stride_w, dil_h, dil_w, pad_h, pad_w;
    int32_t depth_mult; /* depthwise only: out_c = in_c * depth_mult */
    int32_t in_offset, out_offset, act_min, act_max;
    int32_t fast_requant; /* 1: every |accumulator| < 2^30 and every shift < 0 (the compiler checks) */
    const int8_t *filter;
    const int32_t *bias; /* may be NULL */
    const int32_t *mult; /* per output channel */
    const int8_t *shift; /* per output channel */
} k_conv_t;

typedef struct {
    int32_t batches, in_size, out_size;
    int32_t in_offset, out_offset, mult, shift, act_min, act_max;
    int32_t fast_requant; /* as in k_conv_t */
    const int8_t *weights; /* [out_size][in_size] */
    const int32_t *bias;   /* may be NULL */
} k_fc_t;

typedef struct {
    int32_t in_h, in_w, c, out_h, out_w;
    int32_t k_h, k_w, stride_h, stride_w, pad_h, pad_w, act_min, act_max;
} k_pool_t;

typedef struct {
    int32_t size, left_shift;
    int32_t in1_offset, in2_offset, out_offset;
    int32_t in1_mult, in1_shift, in2_mult, in2_shift, out_mult, out_shift;
    int32_t act_min, act_max;
} k_add_t;

typedef struct {
    int32_t rows, depth;
    int32_t input_multiplier, input_left_shift, diff_min;
} k_softmax_t;

void k_conv2d(const k_conv_t *p, const int8_t *in, int8_t *out, void *scratch);
void k_depthwise_conv2d(const k_conv_t *p, const int8_t *in, int8_t *out, void *scratch);
void k_fully_connected(const k_fc_t *p, const int8_t *in, int8_t *out, void *scratch);
void k_avg_pool2d(const k_pool_t *p, const int8_t *in, int8_t *out);
void k_max_pool2d(const k_pool_t *p, const int8_t *in, int8_t *out);
void k_add(const k_add_t *p, const int8_t *in1, const int8_t *in2, int8_t *out);
void k_softmax(const k_softmax_t *p, const int8_t *in, int8_t *out);

/* Scratch bytes per kernel (the compiler mirrors these formulas). */
#define K_CONV2D_SCRATCH_BYTES(k_h, k_w, in_c) ((size_t)4 * (size_t)(k_h) * (size_t)(k_w) * (size_t)(in_c))
#define K_DEPTHWISE_SCRATCH_BYTES(k_h, k_w, in_c) \
    ((size_t)(4 + 2 * (k_h) * (k_w)) * (((size_t)(in_c) + 3u) & ~(size_t)3u) + (((size_t)(in_c) + 3u) & ~(size_t)3u))
#define K_FC_SCRATCH_BYTES(in_size) ((size_t)2 * (size_t)(in_size))

/* The straightforward forms, built in either case (unreferenced, the linker drops them). */
void k_conv2d_ref(const k_conv_t *p, const int8_t *in, int8_t *out);
void k_depthwise_conv2d_ref(const k_conv_t *p, const int8_t *in, int8_t *out);
void k_fully_connected_ref(const k_fc_t *p, const int8_t *in, int8_t *out);

#ifdef __cplusplus
}
#endif

#endif /* KERNELS_H */
