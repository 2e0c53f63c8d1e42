/* minnow board support for emulated Cortex-M boards (QEMU mps2/mps3): vector table, reset,
 * SysTick timing and semihosting output. Run QEMU with -icount shift=0: one retired instruction
 * advances the virtual clock by 1 ns, so SysTick ticks on the CPU clock count instructions
 * (40 per tick at 25 MHz on mps2-an385/386/500, 50 on mps2-an505, 31.25 on mps3-an547). */
#include <stdint.h>
#include "minnow_board.h"

int main(void);

static volatile uint32_t minnow_systick_wraps;

void minnow_systick_handler(void) { ++minnow_systick_wraps; }
void minnow_default_handler(void) { for (;;) {} }

static void minnow_semihost(uint32_t operation, const void *argument) {
  register uint32_t r0 __asm("r0") = operation;
  register const void *r1 __asm("r1") = argument;
  __asm volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
}

void board_puts(const char *s) { minnow_semihost(0x04u, s); /* SYS_WRITE0 */ }

void board_exit(int status) {
  /* SYS_EXIT with ADP_Stopped_ApplicationExit (0x20026) or ADP_Stopped_RunTimeErrorUnknown. */
  minnow_semihost(0x18u, (const void *)(uintptr_t)(status == 0 ? 0x20026u : 0x20023u));
  for (;;) {}
}

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

void board_timer_start(void) {
  minnow_systick_wraps = 0;
  SYST_RVR = 0xFFFFFFu;
  SYST_CVR = 0;
  SYST_CSR = 7u; /* enable, interrupt, CPU clock */
}

uint64_t board_timer_read(void) {
  uint32_t wraps, value;
  do {
    wraps = minnow_systick_wraps;
    value = SYST_CVR;
  } while (wraps != minnow_systick_wraps);
  return (uint64_t)wraps * 0x1000000u + (0xFFFFFFu - value);
}

void minnow_reset_handler(void) {
  minnow_c_runtime();
  board_exit(main());
}

__attribute__((section(".isr_vector"), used)) const void *const minnow_vectors[16] = {
    &_estack, (const void *)minnow_reset_handler, (const void *)minnow_default_handler,
    (const void *)minnow_default_handler, (const void *)minnow_default_handler,
    (const void *)minnow_default_handler, (const void *)minnow_default_handler, 0, 0, 0, 0,
    (const void *)minnow_default_handler, (const void *)minnow_default_handler, 0,
    (const void *)minnow_default_handler, (const void *)minnow_systick_handler};
