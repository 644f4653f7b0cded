/*
 * The tinyharness port of the MLPerf Tiny submitter API for the emulated boards: the model of
 * model.h (compiled from the benchmark's .tflite), the board's UART and 64-bit microsecond clock.
 * Input transforms and result lines follow the reference ports (mlperf-tiny.md 3.6 and 6.7) as
 * tinyharness/suts/serial/firmware.py reproduces them byte for byte. The benchmark is chosen at
 * build time with -DTH_BENCHMARK_<ID>.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "board.h"
#include "internally_implemented.h"
#include "model.h"
#include "submitter_implemented.h"

#define TH_PRINTF_BUFFER 256 /* longest line: an 80-character unknown command in its error */

#if defined(TH_BENCHMARK_AD01)
#define TH_BAUD 921600u
#define TH_FLOAT_INPUT_MAX 640u /* the float window kept for the MSE (AD's input_float) */
static float s_input_float[TH_FLOAT_INPUT_MAX];
#else
#define TH_BAUD 115200u
#endif

/* ---- initialisation and time ---- */

void th_serialport_initialize(void) { board_uart_init(TH_BAUD); }

void th_timestamp_initialize(void) {
    board_timer_init();
    th_printf(EE_MSG_TIMESTAMP_MODE);
    th_timestamp();
}

void th_final_initialize(void) {
#if defined(TH_BENCHMARK_AD01)
    th_printf("Initialized\r\n"); /* what the AD reference prints */
#endif
}

/* The 64-bit clock printed modulo 2^32, as the reference's 32-bit microsecond ticker. */
void th_timestamp(void) {
    unsigned long us = (unsigned long)board_us();
    th_printf(EE_MSG_TIMESTAMP, us);
}

/* ---- per-operator profile (builds with -DMODEL_PROFILE only) ----
 * model.c calls the hook before each operator and once after the last; the ticks between are
 * summed per operator over the timed inferences (th_pre resets them) and printed after the
 * results line as m-profile-[inferences,tick_hz] and one m-op-ticks-[index,name,ticks] per op. */
#ifdef MODEL_PROFILE
#define TH_PROFILE_MAX_OPS 256
static uint64_t s_op_ticks[TH_PROFILE_MAX_OPS];
static uint64_t s_op_last;
static unsigned long s_profiled;
static int s_timed;

void model_profile_hook(int op_index) {
    uint64_t now = board_ticks();
    if (s_timed && op_index > 0 && op_index <= TH_PROFILE_MAX_OPS) {
        s_op_ticks[op_index - 1] += now - s_op_last;
    }
    s_op_last = board_ticks(); /* the hook's own reading is not charged to the next op */
}

static void th_profile_print(void) {
    int count = model_op_count < TH_PROFILE_MAX_OPS ? model_op_count : TH_PROFILE_MAX_OPS;
    th_printf("m-profile-[%lu,%lu]\r\n", s_profiled, (unsigned long)board_tick_hz());
    for (int i = 0; i < count; ++i) {
        th_printf("m-op-ticks-[%d,%s,%lu]\r\n", i, model_op_names[i], (unsigned long)s_op_ticks[i]);
    }
}

void th_pre(void) {
    th_memset(s_op_ticks, 0, sizeof s_op_ticks);
    s_profiled = 0;
    s_timed = 1;
}

void th_post(void) { s_timed = 0; }
#else
void th_pre(void) {}
void th_post(void) {}
#endif

/* ---- input ---- */

#if defined(TH_BENCHMARK_AD01)
/* QuantizeFloatToInt8: float division, C round (halves away from zero) in double, clamp; NaN
 * becomes 0 as in the Python model. */
static int8_t quantize_float(float x, float scale, int32_t zero_point) {
    double r = round((double)(x / scale)) + (double)zero_point;
    if (isnan(r)) {
        return 0;
    }
    if (r < -128.0) {
        return -128;
    }
    if (r > 127.0) {
        return 127;
    }
    return (int8_t)(int32_t)r;
}
#endif

/* A short upload is reported and the inference then runs on whatever the input holds; the input
 * tensor is left as it was (AD's float window is overwritten first, as in the reference). */
void th_load_tensor(void) {
    int8_t *input = model_input();
    size_t count;

#if defined(TH_BENCHMARK_AD01)
    size_t want = model_input_size < TH_FLOAT_INPUT_MAX ? model_input_size : TH_FLOAT_INPUT_MAX;
    count = ee_get_buffer((uint8_t *)s_input_float, want * sizeof(float)) / sizeof(float);
#else
    count = ee_get_buffer(NULL, model_input_size); /* the count only */
#endif
    if (count != model_input_size) {
        th_printf("Input db has %d elemented, expected %d\n", (int)count, (int)model_input_size);
        return;
    }
#if defined(TH_BENCHMARK_AD01)
    for (size_t i = 0; i < count; ++i) {
        input[i] = quantize_float(s_input_float[i], model_input_quant.scale,
                                  model_input_quant.zero_point);
    }
#else
    ee_get_buffer((uint8_t *)input, count);
#if defined(TH_BENCHMARK_VWW01) || defined(TH_BENCHMARK_IC01) || defined(TH_BENCHMARK_IC02)
    for (size_t i = 0; i < count; ++i) { /* uint8 pixel - 128 as int8 */
        input[i] = (int8_t)((uint8_t)input[i] ^ 0x80u);
    }
#endif
#endif
}

#ifdef TH_FAULT_ON_INFER
/* Test hook: every inference executes an undefined instruction (-> the HardFault report). */
#define TH_FAULT() __asm volatile("udf #0")
#else
#define TH_FAULT() ((void)0)
#endif

void th_infer(void) {
    TH_FAULT();
    model_invoke();
#ifdef MODEL_PROFILE
    s_profiled += s_timed;
#endif
}

/* ---- results ---- */

/* DequantizeInt8ToFloat: (q - zp) * scale in float. */
static float output_value(size_t i) {
    return (float)((int32_t)model_output()[i] - model_output_quant.zero_point) *
           model_output_quant.scale;
}

void th_results(void) {
#if defined(TH_BENCHMARK_AD01)
    /* The window's MSE against the float input, summed in float like the reference. */
    float diffsum = 0.0f;
    for (size_t i = 0; i < model_output_size && i < TH_FLOAT_INPUT_MAX; ++i) {
        float diff = output_value(i) - s_input_float[i];
        diffsum += diff * diff;
    }
    diffsum /= (float)model_output_size;
    th_printf("m-results-[%0.3f]\r\n", (double)diffsum);
#else
    th_printf("m-results-[");
    for (size_t i = 0; i < model_output_size; ++i) {
        float v = output_value(i);
#if defined(TH_BENCHMARK_KWS01)
        /* "0." and three digits by hand, as the reference (no %f on some embedded printfs) */
        th_printf("0.%d%d%d", (int)(v * 10), (int)(v * 100) % 10, (int)(v * 1000) % 10);
        if (i + 1 < model_output_size) {
            th_printf(",");
        }
#elif defined(TH_BENCHMARK_VWW01)
        th_printf("%0.3f,", (double)v); /* the reference's comma after every value, last too */
#else
        th_printf("%0.3f", (double)v);
        if (i + 1 < model_output_size) {
            th_printf(",");
        }
#endif
    }
    th_printf("]\r\n");
#endif
#ifdef MODEL_PROFILE
    th_profile_print();
#endif
}

/* ---- serial ---- */

int th_vprintf(const char *format, va_list ap) {
    char buffer[TH_PRINTF_BUFFER];
    int n = vsnprintf(buffer, sizeof buffer, format, ap);
    if (n > 0) {
        board_write(buffer, (size_t)n < sizeof buffer ? (size_t)n : sizeof buffer - 1);
    }
    return n;
}

void th_printf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    th_vprintf(fmt, ap);
    va_end(ap);
}

char th_getchar(void) { return board_getc(); }

void th_command_ready(char volatile *msg) { ee_serial_command_parser_callback((char *)msg); }

/* ---- libc hooks ---- */

int th_strncmp(const char *str1, const char *str2, size_t n) { return strncmp(str1, str2, n); }
char *th_strncpy(char *dest, const char *src, size_t n) { return strncpy(dest, src, n); }
size_t th_strnlen(const char *str, size_t maxlen) { return strnlen(str, maxlen); }
char *th_strcat(char *dest, const char *src) { return strcat(dest, src); }
char *th_strtok(char *str1, const char *sep) { return strtok(str1, sep); }
int th_atoi(const char *str) { return atoi(str); }
void *th_memset(void *b, int c, size_t len) { return memset(b, c, len); }
void *th_memcpy(void *dst, const void *src, size_t n) { return memcpy(dst, src, n); }
