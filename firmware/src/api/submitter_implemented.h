/*
 * The MLPerf Tiny / EEMBC porting API: what a submitter's port implements (th_*) for the protocol
 * layer of internally_implemented.c. Names and signatures follow the reference API so that either
 * side can be exchanged with the official one. Written for tinyharness.
 */
#ifndef SUBMITTER_IMPLEMENTED_H
#define SUBMITTER_IMPLEMENTED_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Model ids that `profile%` reports as m-model-[...]; the host picks its test script by them. */
#define EE_MODEL_VERSION_KWS01 "kws01"
#define EE_MODEL_VERSION_VWW01 "vww01"
#define EE_MODEL_VERSION_IC01 "ic01"
#define EE_MODEL_VERSION_IC02 "ic02"
#define EE_MODEL_VERSION_AD01 "ad01"

/* The build selects the benchmark with one -DTH_BENCHMARK_<ID> (preprocessor-testable, unlike a
 * string), from which TH_MODEL_VERSION follows; a port may also define TH_MODEL_VERSION itself. */
#ifndef TH_MODEL_VERSION
#if defined(TH_BENCHMARK_KWS01)
#define TH_MODEL_VERSION EE_MODEL_VERSION_KWS01
#elif defined(TH_BENCHMARK_VWW01)
#define TH_MODEL_VERSION EE_MODEL_VERSION_VWW01
#elif defined(TH_BENCHMARK_IC01)
#define TH_MODEL_VERSION EE_MODEL_VERSION_IC01
#elif defined(TH_BENCHMARK_IC02)
#define TH_MODEL_VERSION EE_MODEL_VERSION_IC02
#elif defined(TH_BENCHMARK_AD01)
#define TH_MODEL_VERSION EE_MODEL_VERSION_AD01
#else
#error "define one of TH_BENCHMARK_KWS01, _VWW01, _IC01, _IC02, _AD01 (or TH_MODEL_VERSION)"
#endif
#endif

#ifndef TH_VENDOR_NAME_STRING
#define TH_VENDOR_NAME_STRING "tinyharness-qemu"
#endif

/* The db upload buffer holds the largest sample (VWW: 96x96 RGB). */
#define MAX_DB_INPUT_SIZE (96 * 96 * 3)

/* Performance mode only: m-lap-us stamps, no GPIO pulses. */
#define EE_MSG_TIMESTAMP "m-lap-us-%lu\r\n"
#define EE_MSG_TIMESTAMP_MODE "m-timestamp-mode-performance\r\n"

/* Required. */
void th_load_tensor(void);
void th_results(void);
void th_infer(void);
void th_timestamp(void);
void th_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char th_getchar(void);

/* Optional. */
void th_serialport_initialize(void);
void th_timestamp_initialize(void);
void th_final_initialize(void);
void th_pre(void);
void th_post(void);
void th_command_ready(char volatile *msg);

/* libc hooks: the protocol layer calls no libc function directly. */
int th_strncmp(const char *str1, const char *str2, size_t n);
char *th_strncpy(char *dest, const char *src, size_t n);
size_t th_strnlen(const char *str, size_t maxlen);
char *th_strcat(char *dest, const char *src);
char *th_strtok(char *str1, const char *sep);
int th_atoi(const char *str);
void *th_memset(void *b, int c, size_t len);
void *th_memcpy(void *dst, const void *src, size_t n);
int th_vprintf(const char *format, va_list ap);

#endif /* SUBMITTER_IMPLEMENTED_H */
