/*
 * The MLPerf Tiny DUT protocol layer, written for tinyharness after the documented behaviour of
 * the EEMBC reference (mlperf-tiny.md section 6) and byte-compatible with the Python model in
 * tinyharness/suts/serial/firmware.py, quirks included: 80-character command buffer whose last
 * slot is overwritten, strtok/atoi parsing, an oversized `db load` that keeps its size, unprefixed
 * LF-only diagnostics. All output goes through th_printf.
 */
#include "internally_implemented.h"

#include <stdbool.h>

static char g_cmd_buf[EE_CMD_SIZE + 1];
static size_t g_cmd_pos;
static volatile bool g_state_parser_enabled;

/* The upload buffer lives in its own NOBITS section (.bss.ee_db) so that the linker map and the
 * size report show it apart from the model's arena. */
static uint8_t gp_buff[MAX_DB_INPUT_SIZE] __attribute__((section(".bss.ee_db"), aligned(8)));
static size_t g_buff_size; /* bytes announced by `db load N` (kept even when too large) */
static size_t g_buff_pos;  /* bytes received so far; keeps counting past the buffer's end */

void ee_benchmark_initialize(void) {
    th_serialport_initialize();
    th_timestamp_initialize();
    th_final_initialize();
    th_printf(EE_MSG_INIT_DONE);
    g_state_parser_enabled = true;
    th_printf(EE_MSG_READY);
}

/* One received character. Nothing is collected until the parser is enabled (end of boot). */
void ee_serial_callback(char c) {
    if (!g_state_parser_enabled) {
        return;
    }
    if (c == EE_CMD_TERMINATOR) {
        g_cmd_buf[g_cmd_pos] = '\0';
        th_command_ready(g_cmd_buf);
        g_cmd_pos = 0;
    } else {
        g_cmd_buf[g_cmd_pos] = c;
        g_cmd_pos = g_cmd_pos >= EE_CMD_SIZE ? EE_CMD_SIZE : g_cmd_pos + 1;
    }
}

void ee_serial_command_parser_callback(char *p_command) {
    char *tok;

    if (!g_state_parser_enabled) {
        return;
    }
    tok = th_strtok(p_command, EE_CMD_DELIMITER);
    if (tok == NULL) { /* an empty command: newlib's printf would show a NULL %s as (null) */
        th_printf(EE_ERR_CMD, "(null)");
    } else if (th_strncmp(tok, EE_CMD_NAME, EE_CMD_SIZE) == 0) {
        th_printf(EE_MSG_NAME, EE_DEVICE_NAME, TH_VENDOR_NAME_STRING);
    } else if (th_strncmp(tok, EE_CMD_TIMESTAMP, EE_CMD_SIZE) == 0) {
        th_timestamp();
    } else if (ee_profile_parse(tok) == EE_ARG_CLAIMED) {
        /* handled */
    } else {
        th_printf(EE_ERR_CMD, tok);
    }
    th_printf(EE_MSG_READY);
}

static void ee_print_help(void) {
    th_printf("%s\r\n\r\n", EE_FW_VERSION);
    th_printf("help         : Print this information\r\n");
    th_printf("name         : Print the name of the device\r\n");
    th_printf("timestsamp   : Generate a timetsamp\r\n");
    th_printf("db SUBCMD    : Manipulate a generic byte buffer\r\n");
    th_printf("  load N     : Allocate N bytes and set load counter\r\n");
    th_printf("  db HH[HH]* : Load 8-bit hex byte(s) until N bytes\r\n");
    th_printf("  print [N=16] [offset=0]\r\n");
    th_printf("             : Print N bytes at offset as hex\r\n");
    th_printf("infer N [W=0]: Load input, execute N inferences after W warmup loops\r\n");
    th_printf("results      : Return the result fp32 vector\r\n");
}

static void ee_infer_parse(void) {
    size_t n = EE_INFER_DEFAULT_N;
    size_t warmup = EE_INFER_DEFAULT_WARMUP;
    char *p_next = th_strtok(NULL, EE_CMD_DELIMITER);
    int value;

    if (p_next != NULL) {
        value = th_atoi(p_next);
        if (value <= 0) {
            th_printf("e-[Inference iterations must be >0]\r\n");
            return;
        }
        n = (size_t)value;
        p_next = th_strtok(NULL, EE_CMD_DELIMITER);
        if (p_next != NULL) {
            value = th_atoi(p_next);
            if (value < 0) {
                th_printf("e-[Inference warmup must be >=0]\r\n");
                return;
            }
            warmup = (size_t)value;
        }
    }
    ee_infer(n, warmup);
}

arg_claimed_t ee_profile_parse(char *p_command) {
    if (th_strncmp(p_command, "profile", EE_CMD_SIZE) == 0) {
        th_printf("m-profile-[%s]\r\n", EE_FW_VERSION);
        th_printf("m-model-[%s]\r\n", TH_MODEL_VERSION);
    } else if (th_strncmp(p_command, "help", EE_CMD_SIZE) == 0) {
        ee_print_help();
    } else if (ee_buffer_parse(p_command) == EE_ARG_CLAIMED) {
        /* handled */
    } else if (th_strncmp(p_command, "infer", EE_CMD_SIZE) == 0) {
        ee_infer_parse();
    } else if (th_strncmp(p_command, "results", EE_CMD_SIZE) == 0) {
        th_results();
    } else {
        return EE_ARG_UNCLAIMED;
    }
    return EE_ARG_CLAIMED;
}

/* The value of two hex digits, or -1 when either is not one. */
long ee_hexdec(char *hex) {
    long value = 0;
    for (int i = 0; i < 2; ++i) {
        char c = hex[i];
        long digit;
        if (c >= '0' && c <= '9') {
            digit = c - '0';
        } else if (c >= 'a' && c <= 'f') {
            digit = c - 'a' + 10;
        } else if (c >= 'A' && c <= 'F') {
            digit = c - 'A' + 10;
        } else {
            return -1;
        }
        value = value * 16 + digit;
    }
    return value;
}

static void ee_buffer_load(void) {
    char *p_next = th_strtok(NULL, EE_CMD_DELIMITER);

    if (p_next == NULL) {
        th_printf("e-[Command 'db load' requires the # of bytes]\r\n");
        return;
    }
    g_buff_size = (size_t)th_atoi(p_next);
    if (g_buff_size == 0) {
        th_printf("e-[Command 'db load' must be >0 bytes]\r\n");
        return;
    }
    g_buff_pos = 0;
    if (g_buff_size > MAX_DB_INPUT_SIZE) { /* the size is kept: later data would overrun */
        th_printf("Supplied buffer size %d exceeds maximum of %d\n", (int)g_buff_size,
                  (int)MAX_DB_INPUT_SIZE);
    } else {
        th_printf("m-[Expecting %d bytes]\r\n", (int)g_buff_size);
    }
}

/* `db print`: the announced count (capped at the buffer), 8 bytes a line. */
static void ee_buffer_print(void) {
    size_t n = g_buff_size < MAX_DB_INPUT_SIZE ? g_buff_size : MAX_DB_INPUT_SIZE;
    for (size_t i = 0; i < n; i += 8) {
        th_printf("m-buffer-");
        for (size_t j = i; j < i + 8 && j < n; ++j) {
            th_printf(j == i ? "%02x" : "-%02x", gp_buff[j]);
        }
        th_printf("\r\n");
    }
    if (n % 8 != 0) { /* the reference's extra line after a partial last row */
        th_printf("\r\n");
    }
}

static void ee_buffer_hex(char *p_next) {
    size_t numbytes = th_strnlen(p_next, EE_CMD_SIZE);
    char pair[3];

    if ((numbytes & 1u) != 0) {
        th_printf("e-[Insufficent number of hex digits]\r\n");
        return;
    }
    pair[2] = '\0';
    for (size_t i = 0; i < numbytes; i += 2) {
        long res;
        pair[0] = p_next[i];
        pair[1] = p_next[i + 1];
        res = ee_hexdec(pair);
        if (res < 0) {
            th_printf("e-[Invalid hex digit '%s']\r\n", pair);
            return;
        }
        if (g_buff_pos < MAX_DB_INPUT_SIZE) { /* the reference overruns here; drop the byte */
            gp_buff[g_buff_pos] = (uint8_t)res;
        }
        g_buff_pos++;
        if (g_buff_pos == g_buff_size) { /* the rest of this command's digits are discarded */
            th_printf("m-load-done\r\n");
            return;
        }
    }
}

arg_claimed_t ee_buffer_parse(char *p_command) {
    char *p_next;

    if (th_strncmp(p_command, "db", EE_CMD_SIZE) != 0) {
        return EE_ARG_UNCLAIMED;
    }
    p_next = th_strtok(NULL, EE_CMD_DELIMITER);
    if (p_next == NULL) {
        th_printf("e-[Command 'db' requires a subcommand]\r\n");
    } else if (th_strncmp(p_next, "load", EE_CMD_SIZE) == 0) {
        ee_buffer_load();
    } else if (th_strncmp(p_next, "print", EE_CMD_SIZE) == 0) {
        ee_buffer_print();
    } else {
        ee_buffer_hex(p_next);
    }
    return EE_ARG_CLAIMED;
}

void ee_infer(size_t n, size_t n_warmup) {
    th_load_tensor(); /* untimed */
    th_printf("m-warmup-start-%d\r\n", (int)n_warmup);
    while (n_warmup-- > 0) {
        th_infer();
    }
    th_printf("m-warmup-done\r\n");
    th_printf("m-infer-start-%d\r\n", (int)n);
    th_timestamp();
    th_pre();
    while (n-- > 0) {
        th_infer();
    }
    th_post();
    th_timestamp();
    th_printf("m-infer-done\r\n");
    th_results();
}

/* Copies out up to max_len of the bytes received (never past the buffer) and returns the count;
 * a NULL buffer only returns the count. */
size_t ee_get_buffer(uint8_t *buffer, size_t max_len) {
    size_t len = g_buff_pos < max_len ? g_buff_pos : max_len;
    if (len > MAX_DB_INPUT_SIZE) {
        len = MAX_DB_INPUT_SIZE;
    }
    if (buffer != NULL) {
        th_memcpy(buffer, gp_buff, len);
    }
    return len;
}

uint8_t *ee_get_buffer_pointer(void) { return gp_buff; }
