/* minnow board support for real RISC-V boards flashed through a debug probe (GD32VF103):
 * start-up from flash, mcycle timing, traps reported as faults, and no output: the harness
 * leaves its results in the minnow_results block and stops at minnow_checkpoint, where the
 * probe's breakpoint reads them. Runs at the chip's reset clock. Follows
 * probe_riscv_common.c. */
extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss;

/* The chip may start at an alias of the flash (address 0): jump to the linked address first. */
__attribute__((naked, section(".text.init"))) void _start(void) {
  __asm volatile(
      "lui t0, %hi(minnow_start_linked)\n"
      "addi t0, t0, %lo(minnow_start_linked)\n"
      "jr t0\n"
      "minnow_start_linked:\n" MINNOW_RISCV_ENTER);
}

static uint64_t minnow_t0;
static uint64_t minnow_mcycle(void) {
  uint32_t high, low, again;
  do {
    __asm volatile("csrr %0, mcycleh" : "=r"(high));
    __asm volatile("csrr %0, mcycle" : "=r"(low));
    __asm volatile("csrr %0, mcycleh" : "=r"(again));
  } while (high != again);
  return ((uint64_t)high << 32) | low;
}
void board_timer_start(void) { minnow_t0 = minnow_mcycle(); }
uint64_t board_timer_read(void) { return minnow_mcycle() - minnow_t0; }

__attribute__((used)) void minnow_board_main(void) {
  uint32_t *src = &_sidata, *dst = &_sdata;
  while (dst < &_edata) *dst++ = *src++;
  for (dst = &_sbss; dst < &_ebss;) *dst++ = 0;
  board_exit(main());
}
