/*
 * Reset and exception entry for the MPS2 boards: the vector table QEMU reads at address 0, .data
 * copied from ROM, .bss zeroed, faults reported on UART0 as one e-[...] line before halting.
 */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "mps2.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, __stack_top;
extern int main(void);

void Reset_Handler(void);
void HardFault_Handler(void);
void Default_Handler(void);

#define WEAK_DEFAULT __attribute__((weak, alias("Default_Handler")))
void NMI_Handler(void) WEAK_DEFAULT;
void MemManage_Handler(void) WEAK_DEFAULT;
void BusFault_Handler(void) WEAK_DEFAULT;
void UsageFault_Handler(void) WEAK_DEFAULT;
void SVC_Handler(void) WEAK_DEFAULT;
void DebugMon_Handler(void) WEAK_DEFAULT;
void PendSV_Handler(void) WEAK_DEFAULT;
void SysTick_Handler(void) WEAK_DEFAULT;
void UART0RX_Handler(void) WEAK_DEFAULT;
void TIMER0_Handler(void) WEAK_DEFAULT;

typedef void (*vector_t)(void);

__attribute__((section(".vectors"), used)) static const vector_t g_vectors[16 + MPS2_NUM_IRQ] = {
    [0] = (vector_t)&__stack_top,
    [1] = Reset_Handler,
    [2] = NMI_Handler,
    [3] = HardFault_Handler,
    [4] = MemManage_Handler,
    [5] = BusFault_Handler,
    [6] = UsageFault_Handler,
    [11] = SVC_Handler,
    [12] = DebugMon_Handler,
    [14] = PendSV_Handler,
    [15] = SysTick_Handler,
    [16 + MPS2_IRQ_UART0_RX] = UART0RX_Handler,
    [16 + MPS2_IRQ_TIMER0] = TIMER0_Handler,
    /* every other line: unexpected, reported by number */
    [16 + 1] = Default_Handler, [16 + 2] = Default_Handler, [16 + 3] = Default_Handler,
    [16 + 4] = Default_Handler, [16 + 5] = Default_Handler, [16 + 6] = Default_Handler,
    [16 + 7] = Default_Handler, [16 + 9] = Default_Handler, [16 + 10] = Default_Handler,
    [16 + 11] = Default_Handler, [16 + 12] = Default_Handler, [16 + 13] = Default_Handler,
    [16 + 14] = Default_Handler, [16 + 15] = Default_Handler, [16 + 16] = Default_Handler,
    [16 + 17] = Default_Handler, [16 + 18] = Default_Handler, [16 + 19] = Default_Handler,
    [16 + 20] = Default_Handler, [16 + 21] = Default_Handler, [16 + 22] = Default_Handler,
    [16 + 23] = Default_Handler, [16 + 24] = Default_Handler, [16 + 25] = Default_Handler,
    [16 + 26] = Default_Handler, [16 + 27] = Default_Handler, [16 + 28] = Default_Handler,
    [16 + 29] = Default_Handler, [16 + 30] = Default_Handler, [16 + 31] = Default_Handler,
};

void Reset_Handler(void) {
    uint32_t *src = &_sidata;
    for (uint32_t *dst = &_sdata; dst < &_edata;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &_sbss; dst < &_ebss;) {
        *dst++ = 0;
    }
    main();
    board_halt();
}

void board_halt(void) {
    irq_disable();
    for (;;) {
        cpu_wfi();
    }
}

/* Fault output bypasses th_printf (its buffer and libc may be what broke). */
static void put_str(const char *s) {
    while (*s) {
        board_putc(*s++);
    }
}

static void put_hex(const char *label, uint32_t value) {
    static const char digits[] = "0123456789abcdef";
    put_str(label);
    for (int shift = 28; shift >= 0; shift -= 4) {
        board_putc(digits[(value >> shift) & 0xFu]);
    }
}

static void fault_uart_ready(void) {
    if (!(MPS2_UART0->CTRL & UART_CTRL_TXEN)) {
        board_uart_init(0);
    }
}

/* Called from HardFault_Handler with the stacked frame (r0-r3, r12, lr, pc, xpsr). */
__attribute__((used, noreturn)) void hardfault_report(const uint32_t *frame) {
    fault_uart_ready();
    put_str("\r\ne-[HardFault");
    put_hex(" pc=0x", frame[6]);
    put_hex(" lr=0x", frame[5]);
    put_hex(" cfsr=0x", SCB_CFSR);
    put_hex(" hfsr=0x", SCB_HFSR);
    put_hex(" bfar=0x", SCB_BFAR);
    put_str("]\r\n");
    board_halt();
}

__attribute__((naked)) void HardFault_Handler(void) {
    __asm volatile(
        "tst lr, #4\n\t"
        "ite eq\n\t"
        "mrseq r0, msp\n\t"
        "mrsne r0, psp\n\t"
        "b hardfault_report\n\t");
}

void Default_Handler(void) {
    fault_uart_ready();
    put_hex("\r\ne-[Unhandled exception 0x", SCB_ICSR & 0x1FFu);
    put_str("]\r\n");
    board_halt();
}
