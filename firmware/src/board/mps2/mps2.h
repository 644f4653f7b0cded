/*
 * ARM MPS2 FPGA images AN385 (Cortex-M3), AN386 (Cortex-M4) and AN500 (Cortex-M7) as QEMU models
 * them (hw/arm/mps2.c): CMSDK APB UART0 and timer0, NVIC lines, core intrinsics.
 */
#ifndef MPS2_H
#define MPS2_H

#include <stdint.h>

#define MPS2_SYSCLK_HZ 25000000u /* the APB clock QEMU gives the CMSDK timers and UARTs */

typedef struct {
    volatile uint32_t DATA;      /* 0x00 */
    volatile uint32_t STATE;     /* 0x04 */
    volatile uint32_t CTRL;      /* 0x08 */
    volatile uint32_t INTSTATUS; /* 0x0C read; INTCLEAR on write */
    volatile uint32_t BAUDDIV;   /* 0x10; QEMU refuses to transmit below 16 */
} cmsdk_uart_t;

#define UART_STATE_TXFULL (1u << 0)
#define UART_STATE_RXFULL (1u << 1)
#define UART_CTRL_TXEN (1u << 0)
#define UART_CTRL_RXEN (1u << 1)
#define UART_CTRL_RXINTEN (1u << 3)
#define UART_INT_RX (1u << 1)

typedef struct {
    volatile uint32_t CTRL;      /* 0x00 */
    volatile uint32_t VALUE;     /* 0x04: counts down */
    volatile uint32_t RELOAD;    /* 0x08 */
    volatile uint32_t INTSTATUS; /* 0x0C read; INTCLEAR on write */
} cmsdk_timer_t;

#define TIMER_CTRL_EN (1u << 0)
#define TIMER_CTRL_IRQEN (1u << 3)

#define MPS2_UART0 ((cmsdk_uart_t *)0x40004000u)
#define MPS2_TIMER0 ((cmsdk_timer_t *)0x40000000u)

/* NVIC lines, checked against QEMU 7.2: UART0 RX 0 (TX 1), timer0 8. */
#define MPS2_IRQ_UART0_RX 0
#define MPS2_IRQ_TIMER0 8
#define MPS2_NUM_IRQ 32

#define NVIC_ISER0 (*(volatile uint32_t *)0xE000E100u)
#define NVIC_ICER0 (*(volatile uint32_t *)0xE000E180u)
#define NVIC_ICPR0 (*(volatile uint32_t *)0xE000E280u)
#define SCB_ICSR (*(volatile uint32_t *)0xE000ED04u)
#define SCB_CFSR (*(volatile uint32_t *)0xE000ED28u)
#define SCB_HFSR (*(volatile uint32_t *)0xE000ED2Cu)
#define SCB_BFAR (*(volatile uint32_t *)0xE000ED38u)

static inline void nvic_enable(unsigned irq) {
    NVIC_ICPR0 = 1u << irq;
    NVIC_ISER0 = 1u << irq;
}

static inline void irq_disable(void) { __asm volatile("cpsid i" ::: "memory"); }
static inline void irq_enable(void) { __asm volatile("cpsie i" ::: "memory"); }
static inline void cpu_wfi(void) { __asm volatile("dsb\n\twfi" ::: "memory"); }
static inline void cpu_isb(void) { __asm volatile("isb" ::: "memory"); }

#endif /* MPS2_H */
