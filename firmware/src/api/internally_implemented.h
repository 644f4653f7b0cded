/*
 * The MLPerf Tiny DUT protocol layer ("internally implemented"): command buffer, parser, db upload
 * buffer and the infer sequence of mlperf-tiny.md section 6. It reaches the port only through the
 * th_* functions of submitter_implemented.h. Written for tinyharness.
 */
#ifndef INTERNALLY_IMPLEMENTED_H
#define INTERNALLY_IMPLEMENTED_H

#include <stddef.h>
#include <stdint.h>

#include "submitter_implemented.h"

#define EE_FW_VERSION "ULPMark for tinyML Firmware V0.0.1"
#define EE_DEVICE_NAME "dut"

#define EE_CMD_SIZE 80u        /* characters a command may hold; more overwrite the last slot */
#define EE_CMD_DELIMITER " "
#define EE_CMD_TERMINATOR '%'

#define EE_CMD_NAME "name"
#define EE_CMD_TIMESTAMP "timestamp"

#define EE_MSG_READY "m-ready\r\n"
#define EE_MSG_INIT_DONE "m-init-done\r\n"
#define EE_MSG_NAME "m-name-%s-[%s]\r\n"
#define EE_ERR_CMD "e-[Unknown command: %s]\r\n"

#define EE_INFER_DEFAULT_N 1
#define EE_INFER_DEFAULT_WARMUP 10 /* what the firmware does; its help text says W=0 */

typedef enum { EE_ARG_CLAIMED, EE_ARG_UNCLAIMED } arg_claimed_t;
typedef enum { EE_STATUS_OK = 0, EE_STATUS_ERROR } ee_status_t;

void ee_benchmark_initialize(void);
void ee_serial_callback(char c);
void ee_serial_command_parser_callback(char *p_command);
arg_claimed_t ee_profile_parse(char *p_command);
arg_claimed_t ee_buffer_parse(char *p_command);
void ee_infer(size_t n, size_t n_warmup);
long ee_hexdec(char *hex);
size_t ee_get_buffer(uint8_t *buffer, size_t max_len);
uint8_t *ee_get_buffer_pointer(void);

#endif /* INTERNALLY_IMPLEMENTED_H */
