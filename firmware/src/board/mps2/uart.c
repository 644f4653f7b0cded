/*
 * UART0 (CMSDK APB UART): receive by interrupt into a ring buffer, transmit by polling.
 *
 * QEMU's model holds one received byte and delivers the next only after DATA is read, holding the
 * host back meanwhile, so nothing is lost as long as the handler clears the RX interrupt BEFORE it
 * drains DATA: clearing after draining would erase the flag of a byte that arrived in between,
 * and under -icount input then stops for good (qemu-dut.md). When the ring is full the handler
 * turns RX interrupts off and leaves the byte in the UART; the reader turns them back on.
 */
#include "board.h"
#include "mps2.h"

#define RX_RING_SIZE 256u /* a power of two; the free-running indices wrap with it */

static volatile uint8_t s_rx_ring[RX_RING_SIZE];
static volatile uint32_t s_rx_head; /* written by the handler (or the reader with IRQs masked) */
static volatile uint32_t s_rx_tail; /* written by the reader */

/* Moves received bytes into the ring; runs in the handler or with interrupts masked. */
static void rx_drain(void) {
    cmsdk_uart_t *uart = MPS2_UART0;
    while (uart->STATE & UART_STATE_RXFULL) {
        if (s_rx_head - s_rx_tail >= RX_RING_SIZE) {
            uart->CTRL &= ~UART_CTRL_RXINTEN;
            return;
        }
        s_rx_ring[s_rx_head % RX_RING_SIZE] = (uint8_t)uart->DATA;
        s_rx_head++;
    }
}

void UART0RX_Handler(void) {
    MPS2_UART0->INTSTATUS = UART_INT_RX; /* clear first, then drain */
    rx_drain();
}

void board_uart_init(uint32_t baud) {
    cmsdk_uart_t *uart = MPS2_UART0;
    uint32_t div = baud ? MPS2_SYSCLK_HZ / baud : 16u;

    uart->CTRL = 0;
    uart->BAUDDIV = div < 16u ? 16u : div; /* QEMU ignores the rate but needs >= 16 */
    uart->INTSTATUS = 0xFu;
    uart->CTRL = UART_CTRL_TXEN | UART_CTRL_RXEN | UART_CTRL_RXINTEN;
    nvic_enable(MPS2_IRQ_UART0_RX);
}

void board_putc(char c) {
    cmsdk_uart_t *uart = MPS2_UART0;
    while (uart->STATE & UART_STATE_TXFULL) {
    }
    uart->DATA = (uint8_t)c;
}

void board_write(const char *s, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        board_putc(s[i]);
    }
}

/* Race-free sleep: the ring is checked with interrupts masked and WFI still wakes on a pending
 * interrupt, so a byte arriving between the check and the WFI cannot be slept through. */
char board_getc(void) {
    char c;

    irq_disable();
    while (s_rx_head == s_rx_tail) {
        rx_drain(); /* a byte left in the UART while RX interrupts were off */
        if (s_rx_head != s_rx_tail) {
            break;
        }
        cpu_wfi();
        irq_enable();
        cpu_isb(); /* the pending handler runs here */
        irq_disable();
    }
    c = (char)s_rx_ring[s_rx_tail % RX_RING_SIZE];
    s_rx_tail++;
    if (!(MPS2_UART0->CTRL & UART_CTRL_RXINTEN)) {
        MPS2_UART0->CTRL |= UART_CTRL_RXINTEN;
        rx_drain(); /* QEMU raises RX only for bytes that arrive while it is enabled */
    }
    irq_enable();
    return c;
}
