/*
 * A stand-in for a compiled model (firmware/src/model/model.h) for the firmware tests: kws01-sized
 * (490 int8 in, 12 out) with the real kws01 quantisation, and a cheap function of the input that a
 * test can predict:
 *     out[j] = int8(wrap8(3*j + sum of in[k] for k % 12 == j))
 * followed by STUB_SPIN turns of a volatile loop, so an inference takes a visible, fixed time.
 */
#include "model.h"

#ifndef STUB_SPIN
#define STUB_SPIN 20000u
#endif

#define STUB_IN 490u
#define STUB_OUT 12u

const char model_name[] = "kws01";
const size_t model_input_size = STUB_IN;
const size_t model_output_size = STUB_OUT;
const model_quant_t model_input_quant = {0.5847029089927673f, 83};
const model_quant_t model_output_quant = {0.00390625f, -128};
const int model_op_count = 1;
const char *const model_op_names[] = {"stub"};

static int8_t s_input[STUB_IN];
static int8_t s_output[STUB_OUT];

int8_t *model_input(void) { return s_input; }
const int8_t *model_output(void) { return s_output; }

void model_invoke(void) {
    uint32_t acc[STUB_OUT];
    volatile uint32_t spin;

    MODEL_OP_HOOK(0);
    for (uint32_t j = 0; j < STUB_OUT; ++j) {
        acc[j] = 3u * j;
    }
    for (uint32_t k = 0; k < STUB_IN; ++k) {
        acc[k % STUB_OUT] += (uint32_t)(int32_t)s_input[k];
    }
    for (uint32_t j = 0; j < STUB_OUT; ++j) {
        s_output[j] = (int8_t)(uint8_t)acc[j];
    }
    for (spin = 0; spin < STUB_SPIN; spin++) {
    }
    MODEL_OP_HOOK(model_op_count);
}
