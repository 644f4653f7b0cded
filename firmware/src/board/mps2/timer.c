/*
 * The microsecond clock: CMSDK timer0 counting down from 2^32-1 at 25 MHz (one wrap every
 * 171.8 s) extended to 64 bits by counting wraps in its interrupt.
 */
#include "board.h"
#include "mps2.h"

/* A test build may shorten the first period to put a wrap of the 32-bit counter within reach:
 * the clock then starts that many ticks before 2^32 instead of at 0. */
#ifndef MPS2_TIMER_FIRST_PERIOD
#define MPS2_TIMER_FIRST_PERIOD 0xFFFFFFFFu
#endif

static volatile uint32_t s_wraps;

void TIMER0_Handler(void) {
    MPS2_TIMER0->INTSTATUS = 1u;
    s_wraps++;
}

void board_timer_init(void) {
    cmsdk_timer_t *timer = MPS2_TIMER0;

    timer->CTRL = 0;
    timer->RELOAD = 0xFFFFFFFFu;
    timer->VALUE = MPS2_TIMER_FIRST_PERIOD;
    timer->INTSTATUS = 1u;
    s_wraps = 0;
    nvic_enable(MPS2_IRQ_TIMER0);
    timer->CTRL = TIMER_CTRL_EN | TIMER_CTRL_IRQEN;
}

uint32_t board_tick_hz(void) { return MPS2_SYSCLK_HZ; }

/* hi/lo/hi: a wrap whose interrupt ran meanwhile makes the loop read again. A wrap whose
 * interrupt has not run yet (interrupts masked, or its latency) shows as the pending flag: it
 * belongs to this reading when the count is small, i.e. was read after the wrap. */
uint64_t board_ticks(void) {
    uint32_t hi, lo, pending;

    do {
        hi = s_wraps;
        lo = ~MPS2_TIMER0->VALUE; /* ticks elapsed in this period */
        pending = MPS2_TIMER0->INTSTATUS & 1u;
    } while (hi != s_wraps);
    if (pending && lo < 0x80000000u) {
        hi++;
    }
    return ((uint64_t)hi << 32) | lo;
}

uint64_t board_us(void) { return board_ticks() / (MPS2_SYSCLK_HZ / 1000000u); }
