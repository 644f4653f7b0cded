/*
 * What the port needs from a board: a UART (interrupt-driven receive, blocking transmit), a
 * free-running 64-bit tick count and a halt. Implemented per board family (board/mps2/).
 */
#ifndef BOARD_H
#define BOARD_H

#include <stddef.h>
#include <stdint.h>

void board_uart_init(uint32_t baud);
void board_putc(char c);                  /* blocks while the transmitter is full */
void board_write(const char *s, size_t n);
char board_getc(void);                    /* blocks, sleeping in WFI, until a byte arrives */

void board_timer_init(void);
uint32_t board_tick_hz(void);
uint64_t board_ticks(void);               /* never wraps (64 bits) */
uint64_t board_us(void);                  /* microseconds since board_timer_init */

void board_halt(void) __attribute__((noreturn));

#endif /* BOARD_H */
