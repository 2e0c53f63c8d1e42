/* minnow board support for QEMU's RISC-V virt board: start-up, minstret timing (exact under
 * -icount shift=0), the 16550 UART for output and the sifive_test device to exit. */
#include <stddef.h>
#include <stdint.h>
#include "minnow_board.h"

int main(void);
extern uint32_t _sbss, _ebss;

__attribute__((naked, section(".text.init"))) void _start(void) {
  __asm volatile(
      ".option push\n.option norelax\nla gp, __global_pointer$\n.option pop\n"
      "la sp, _estack\n"
      "call minnow_board_main\n"
      "1: j 1b\n");
}

void board_puts(const char *s) {
  volatile uint8_t *uart = (volatile uint8_t *)0x10000000u;
  while (*s) *uart = (uint8_t)*s++;
}

void board_exit(int status) {
  *(volatile uint32_t *)0x100000u = status == 0 ? 0x5555u : 0x13333u;
  for (;;) {}
}

static uint32_t minnow_t0;
static uint32_t minnow_minstret(void) {
  uint32_t v;
  __asm volatile("csrr %0, minstret" : "=r"(v));
  return v;
}
void board_timer_start(void) { minnow_t0 = minnow_minstret(); }
uint64_t board_timer_read(void) { return (uint32_t)(minnow_minstret() - minnow_t0); }

__attribute__((used)) void minnow_board_main(void) {
  uint32_t *p;
  for (p = &_sbss; p < &_ebss;) *p++ = 0;
  board_exit(main());
}
