/* What minnow's real RISC-V boards share: a trap reports a fault through the results block,
 * the harness prints nothing (the probe reads the block at minnow_checkpoint), and
 * MINNOW_RISCV_ENTER, the tail of each board's _start: gp, the stack, mtvec (its base
 * aligned for vectored mode too: exceptions enter there either way), then
 * minnow_board_main. Built with -DMINNOW_RESULTS_BLOCK. */
#include <stddef.h>
#include <stdint.h>
#include "minnow_board.h"

int main(void);

#define MINNOW_RISCV_ENTER                                                 \
  ".option push\n.option norelax\nla gp, __global_pointer$\n.option pop\n" \
  "la sp, _estack\n"                                                       \
  "la t0, minnow_trap\n"                                                   \
  "csrw mtvec, t0\n"                                                       \
  "call minnow_board_main\n"                                               \
  "1: j 1b\n"

__attribute__((used, aligned(256))) void minnow_trap(void) {
  minnow_results_fault();
  for (;;) {}
}

void board_puts(const char *s) { (void)s; }

void board_exit(int status) {
  minnow_results_done(status);
  for (;;) {}
}
