/* minnow board support for real Cortex-M boards flashed through a debug probe: vector table,
 * reset, DWT CYCCNT timing, and no output: the harness leaves its results in the
 * minnow_results block and stops at minnow_checkpoint, where the probe's breakpoint reads
 * them. Runs at the chip's reset clock. Built with -DMINNOW_RESULTS_BLOCK. */
#include <stdint.h>
#include "minnow_board.h"

int main(void);

void minnow_fault_handler(void) { minnow_results_fault(); }

void board_puts(const char *s) { (void)s; }

void board_exit(int status) {
  minnow_results_done(status);
  for (;;) {}
}

#define DEMCR (*(volatile uint32_t *)0xE000EDFCu)
#define DWT_CTRL (*(volatile uint32_t *)0xE0001000u)
#define DWT_CYCCNT (*(volatile uint32_t *)0xE0001004u)
#define DWT_LAR (*(volatile uint32_t *)0xE0001FB0u)

static uint32_t minnow_cyccnt_high, minnow_cyccnt_last;

void board_timer_start(void) {
  DEMCR |= 1u << 24; /* TRCENA */
  DWT_LAR = 0xC5ACCE55u; /* unlock the DWT where it is locked (Cortex-M7) */
  DWT_CYCCNT = 0;
  DWT_CTRL |= 1u; /* CYCCNTENA */
  minnow_cyccnt_high = 0;
  minnow_cyccnt_last = 0;
}

uint64_t board_timer_read(void) {
  /* CYCCNT is 32 bits: reads closer together than 2^32 cycles extend it. */
  uint32_t now = DWT_CYCCNT;
  if (now < minnow_cyccnt_last) ++minnow_cyccnt_high;
  minnow_cyccnt_last = now;
  return ((uint64_t)minnow_cyccnt_high << 32) | now;
}

#if defined(MINNOW_CORTEX_M7)
/* The Cortex-M7's caches are off at reset; TFLite Micro and CMSIS-NN benchmarks run with them
 * on. Invalidate then enable the instruction and data caches. */
static void minnow_enable_caches(void) {
  volatile uint32_t *const ccr = (volatile uint32_t *)0xE000ED14u;
  volatile uint32_t *const csselr = (volatile uint32_t *)0xE000ED84u;
  volatile uint32_t *const ccsidr = (volatile uint32_t *)0xE000ED80u;
  uint32_t sets, ways, s, w;
  __asm volatile("dsb\n\tisb");
  *(volatile uint32_t *)0xE000EF50u = 0; /* ICIALLU */
  __asm volatile("dsb\n\tisb");
  *ccr |= 1u << 17; /* IC */
  *csselr = 0; /* level 1 data cache */
  __asm volatile("dsb");
  sets = ((*ccsidr >> 13) & 0x7FFFu) + 1u;
  ways = ((*ccsidr >> 3) & 0x3FFu) + 1u;
  for (s = 0; s < sets; ++s)
    for (w = 0; w < ways; ++w)
      *(volatile uint32_t *)0xE000EF60u = (s << 5) | (w << 30); /* DCISW */
  __asm volatile("dsb");
  *ccr |= 1u << 16; /* DC */
  __asm volatile("dsb\n\tisb");
}
#endif

void minnow_reset_handler(void) {
  minnow_c_runtime();
#if defined(MINNOW_CORTEX_M7)
  minnow_enable_caches();
#endif
  board_exit(main());
}

__attribute__((section(".isr_vector"), used)) const void *const minnow_vectors[16] = {
    &_estack, (const void *)minnow_reset_handler, (const void *)minnow_fault_handler,
    (const void *)minnow_fault_handler, (const void *)minnow_fault_handler,
    (const void *)minnow_fault_handler, (const void *)minnow_fault_handler, 0, 0, 0, 0,
    (const void *)minnow_fault_handler, (const void *)minnow_fault_handler, 0,
    (const void *)minnow_fault_handler, (const void *)minnow_fault_handler};
